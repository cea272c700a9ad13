package forge

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	_ "crypto/sha256" // the HMAC hashes of HS256/384/512
	_ "crypto/sha512"
	_ "embed"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// builtinSecrets is tocsin's own list of secrets that HS256 tokens are signed with in the wild:
// values from tutorials, READMEs and framework examples that get copied into production, defaults
// and placeholders never changed, and the usual passwords. One per line; the first line is empty,
// for the empty secret.
//
//go:embed secrets.txt
var builtinSecrets string

// Wordlist is a list of candidate secrets, one per line (a final "\r" is dropped).
type Wordlist struct {
	Name string // how a finding names the list: "the built-in list", a file name
	open func() (io.ReadCloser, error)
}

// BuiltIn is tocsin's built-in list.
func BuiltIn() Wordlist {
	return Wordlist{Name: "the built-in list", open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(builtinSecrets)), nil
	}}
}

// BuiltInSize is how many secrets the built-in list holds.
func BuiltInSize() int { return strings.Count(builtinSecrets, "\n") }

// FileWordlist reads candidates from the file at path when a crack starts.
func FileWordlist(path string) Wordlist {
	return Wordlist{Name: path, open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// ReaderWordlist reads candidates from r, once.
func ReaderWordlist(name string, r io.Reader) Wordlist {
	return Wordlist{Name: name, open: func() (io.ReadCloser, error) { return io.NopCloser(r), nil }}
}

// maxSecretLine bounds one line of a wordlist.
const maxSecretLine = 64 << 10

// Found is a secret that reproduced a token's signature.
type Found struct {
	Secret []byte
	List   string // the Wordlist's Name
	Entry  int    // 1-based line in that list
}

// crackBatch is how many candidates a worker takes at once: large enough that handing them over
// costs nothing next to hashing them.
const crackBatch = 2048

type batch struct {
	list    string
	first   int // entry number of secrets[0]
	secrets [][]byte
}

// CrackHMAC tries each line of each list, in order, as the HMAC secret of t (HS256, HS384 or HS512),
// offline: no request is sent. It returns the secret that reproduces t's signature, or nil, and how
// many candidates it tried. The work is spread over every CPU.
func CrackHMAC(ctx context.Context, t *Token, lists ...Wordlist) (*Found, int, error) {
	h, ok := t.HMACHash()
	if !ok {
		return nil, 0, fmt.Errorf("%q is not an HMAC algorithm", t.Alg)
	}
	if len(t.Signature) != h.Size() {
		return nil, 0, fmt.Errorf("a %s signature has %d bytes, this one %d", t.Alg, h.Size(), len(t.Signature))
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		tried atomic.Int64
		mu    sync.Mutex
		found *Found
	)
	work := make(chan batch, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := newHMACMatcher(h, []byte(t.SigningInput()), t.Signature)
			for b := range work {
				if ctx.Err() != nil {
					continue // found, or interrupted: drain what was already handed over
				}
				for i, s := range b.secrets {
					if m.matches(s) {
						mu.Lock()
						if found == nil || b.first+i < found.Entry && b.list == found.List {
							found = &Found{Secret: bytes.Clone(s), List: b.list, Entry: b.first + i}
						}
						mu.Unlock()
						cancel()
						break
					}
				}
				tried.Add(int64(len(b.secrets)))
			}
		}()
	}
	err := feed(ctx, work, lists)
	close(work)
	wg.Wait()
	if found != nil {
		return found, int(tried.Load()), nil
	}
	if err == nil {
		err = parent.Err()
	}
	return nil, int(tried.Load()), err
}

// feed reads the lists into batches for the workers until they end or ctx is done.
func feed(ctx context.Context, work chan<- batch, lists []Wordlist) error {
	for _, l := range lists {
		if err := feedOne(ctx, work, l); err != nil {
			if ctx.Err() != nil {
				return nil // a secret was found, or the scan was interrupted: the caller knows which
			}
			return err
		}
	}
	return nil
}

func feedOne(ctx context.Context, work chan<- batch, l Wordlist) error {
	rc, err := l.open()
	if err != nil {
		return fmt.Errorf("wordlist %s: %w", l.Name, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64<<10), maxSecretLine)
	line := 0
	b := batch{list: l.Name, first: 1}
	// The batch's secrets share one buffer, handed to the worker with the batch.
	var buf []byte
	send := func() bool {
		select {
		case work <- b:
		case <-ctx.Done():
			return false
		}
		b = batch{list: l.Name, first: line + 1}
		buf = nil
		return true
	}
	for sc.Scan() {
		line++
		s := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		start := len(buf)
		buf = append(buf, s...)
		b.secrets = append(b.secrets, buf[start:len(buf):len(buf)])
		if len(b.secrets) == crackBatch && !send() {
			return ctx.Err()
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", line+1, maxSecretLine)
		}
		return fmt.Errorf("wordlist %s: %w", l.Name, err)
	}
	if len(b.secrets) > 0 && !send() {
		return ctx.Err()
	}
	return nil
}

// hmacMatcher computes HMAC (RFC 2104) of one message under many keys with no allocation per key,
// which crypto/hmac cannot: it makes a new pair of hashes for every key.
type hmacMatcher struct {
	inner, outer hash.Hash
	ipad, opad   []byte
	msg, want    []byte
	sum, keySum  []byte
}

func newHMACMatcher(h crypto.Hash, msg, want []byte) *hmacMatcher {
	bs := h.New().BlockSize()
	return &hmacMatcher{
		inner: h.New(), outer: h.New(),
		ipad: make([]byte, bs), opad: make([]byte, bs),
		msg: msg, want: want,
		sum: make([]byte, 0, h.Size()), keySum: make([]byte, 0, h.Size()),
	}
}

func (m *hmacMatcher) matches(key []byte) bool {
	if len(key) > len(m.ipad) {
		m.inner.Reset()
		m.inner.Write(key)
		key = m.inner.Sum(m.keySum[:0])
	}
	for i := range m.ipad {
		m.ipad[i], m.opad[i] = 0x36, 0x5c
	}
	for i, c := range key {
		m.ipad[i] ^= c
		m.opad[i] ^= c
	}
	m.inner.Reset()
	m.inner.Write(m.ipad)
	m.inner.Write(m.msg)
	inner := m.inner.Sum(m.sum[:0])
	m.outer.Reset()
	m.outer.Write(m.opad)
	m.outer.Write(inner)
	// Offline, against a signature we already hold: no timing to protect.
	return bytes.Equal(m.outer.Sum(inner[:0]), m.want)
}
