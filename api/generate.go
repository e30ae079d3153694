// Package api holds the code generators' configuration and the documentation
// pages' assets. It has no logic; openapi.yaml at the repository root is the
// source every generated file follows from.
package api

//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config types.cfg.yaml ../openapi.yaml
//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config server.cfg.yaml ../openapi.yaml
