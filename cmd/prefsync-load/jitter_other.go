//go:build !linux

package main

import "errors"

func (l *loader) jitter() error { return errors.New("-mode jitter needs Linux's nanosleep") }
