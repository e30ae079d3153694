package store

//go:generate go tool -modfile=../tools/go.mod sqlc generate
