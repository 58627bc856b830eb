package prefsync

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// The stored form of a ContactState is a few lines of text, one per scope state or
// pause, rather than JSON: a million contacts decode in a fraction of the time, which is
// what start-up spends its time on. Names (channels, topics, states, methods,
// touchpoints) are plain words; the free-text fields come last, quoted.
//
//	s <channel> <topic> <state> <method> <touchpoint> <occurred unix ns> <seq> "<system>" "<actor>"
//	p <channel> <until unix ns> <occurred unix ns> <seq>

// AppendState appends the stored form of st to b.
func AppendState(b []byte, st *ContactState) []byte {
	for _, s := range st.Scopes {
		b = append(b, "s "...)
		b = append(b, s.Channel...)
		b = append(b, ' ')
		b = append(b, s.Topic...)
		b = append(b, ' ')
		b = append(b, s.State...)
		b = append(b, ' ')
		b = append(b, s.Method...)
		b = append(b, ' ')
		b = append(b, s.Source.Touchpoint...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, s.OccurredAt.UnixNano(), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, s.Seq, 10)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, s.Source.System)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, s.Source.Actor)
		b = append(b, '\n')
	}
	for _, p := range st.Pauses {
		b = append(b, "p "...)
		b = append(b, p.Channel...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, p.Until.UnixNano(), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, p.OccurredAt.UnixNano(), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, p.Seq, 10)
		b = append(b, '\n')
	}
	return b
}

// ParseState reads the stored form of a ContactState.
func ParseState(b []byte) (ContactState, error) {
	var st ContactState
	for n := 1; len(b) > 0; n++ {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		var err error
		switch {
		case bytes.HasPrefix(line, []byte("s ")):
			var s ScopeState
			s, err = parseScopeLine(line[2:])
			st.Scopes = append(st.Scopes, s)
		case bytes.HasPrefix(line, []byte("p ")):
			var p Pause
			p, err = parsePauseLine(line[2:])
			st.Pauses = append(st.Pauses, p)
		default:
			err = fmt.Errorf("unknown kind of line")
		}
		if err != nil {
			return st, fmt.Errorf("state line %d: %w", n, err)
		}
	}
	return st, nil
}

func parseScopeLine(line []byte) (ScopeState, error) {
	var f [7][]byte
	for i := range f {
		var ok bool
		if f[i], line, ok = bytes.Cut(line, []byte{' '}); !ok {
			return ScopeState{}, fmt.Errorf("too few fields")
		}
	}
	occurred, err1 := strconv.ParseInt(string(f[5]), 10, 64)
	seq, err2 := strconv.ParseInt(string(f[6]), 10, 64)
	system, rest, err3 := unquotePrefix(line)
	actor, _, err4 := unquotePrefix(bytes.TrimPrefix(rest, []byte{' '}))
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return ScopeState{}, err
		}
	}
	return ScopeState{Channel: intern(f[0]), Topic: intern(f[1]), State: State(intern(f[2])), Method: Method(intern(f[3])),
		Source:     Source{System: system, Touchpoint: Touchpoint(intern(f[4])), Actor: actor},
		OccurredAt: time.Unix(0, occurred).UTC(), Seq: seq}, nil
}

func parsePauseLine(line []byte) (Pause, error) {
	var f [4][]byte
	for i := range f {
		f[i], line, _ = bytes.Cut(line, []byte{' '})
	}
	until, err1 := strconv.ParseInt(string(f[1]), 10, 64)
	occurred, err2 := strconv.ParseInt(string(f[2]), 10, 64)
	seq, err3 := strconv.ParseInt(string(f[3]), 10, 64)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return Pause{}, err
		}
	}
	return Pause{Channel: intern(f[0]), Until: time.Unix(0, until).UTC(), OccurredAt: time.Unix(0, occurred).UTC(), Seq: seq}, nil
}

// names holds one copy of each word the stored states use (channels, topics, states,
// methods, touchpoints): a million decoded contacts share them instead of each holding
// its own.
var names = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

func intern(b []byte) string {
	names.RLock()
	s, ok := names.m[string(b)]
	names.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	names.Lock()
	if len(names.m) < 4096 { // the words come from the dictionary: few
		names.m[s] = s
	}
	names.Unlock()
	return s
}

// unquotePrefix reads a quoted string at the start of b, quickly when it has no escapes.
func unquotePrefix(b []byte) (string, []byte, error) {
	if len(b) < 2 || b[0] != '"' {
		return "", b, fmt.Errorf("want a quoted string")
	}
	if i := bytes.IndexAny(b[1:], "\"\\"); i >= 0 && b[1+i] == '"' {
		return string(b[1 : 1+i]), b[2+i:], nil
	}
	q, err := strconv.QuotedPrefix(string(b))
	if err != nil {
		return "", b, err
	}
	s, err := strconv.Unquote(q)
	return s, b[len(q):], err
}
