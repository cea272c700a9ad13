package config

// EditBase is edit for the external tests (package config_test): the small valid config of
// problems_test.go with old replaced by new, pair by pair.
var EditBase = edit
