package main

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// jitter measures how late this machine wakes a sleeping thread, with no Go timer and
// no network in between: a thread of its own sleeps 200µs in the kernel (nanosleep) over
// and over and notes by how much each sleep overran. Every check wakes threads of two
// processes at least twice, so a check's latency tail cannot be lower than the
// machine's; on a virtual machine whose host is busy, an idle virtual CPU can take
// milliseconds to wake. The figures include Linux's timer slack (50µs unless changed),
// which delays every sleep of every ordinary thread. Run it while nothing else is busy.
func (l *loader) jitter() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const nap = 200 * time.Microsecond
	ts := syscall.NsecToTimespec(int64(nap))
	late := newLatencies(1)
	over := 0
	end := time.Now().Add(l.duration)
	for t := time.Now(); t.Before(end); {
		if err := syscall.Nanosleep(&ts, nil); errors.Is(err, syscall.EINTR) {
			t = time.Now() // woken early by a signal: not a measure
			continue
		} else if err != nil {
			return err
		}
		now := time.Now()
		d := now.Sub(t) - nap
		late.add(0, d)
		if d > time.Millisecond {
			over++
		}
		t = now
	}
	n := late.count()
	if n == 0 {
		return errors.New("jitter: no sleep measured; give a -duration")
	}
	fmt.Printf("jitter: %d sleeps of %s woke late by %s; %d (%.2f%%) more than 1ms late\n",
		n, nap, late.summary(), over, 100*float64(over)/float64(n))
	return nil
}
