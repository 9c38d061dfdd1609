package engine

import "errors"

// codec: conversion between message and the bytes on the wire, through
// package wire.

var errNoCodec = errors.New("engine: codec not available")

func decode(b []byte, m *message) error { return &decodeError{kind: decodeMalformed} }

func encode(dst []byte, m *message) ([]byte, error) { return dst, errNoCodec }
