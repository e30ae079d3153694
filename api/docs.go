package api

import "embed"

// Redoc holds the ReDoc standalone bundle, its licences and its version,
// taken unchanged from the npm package named in docs/redoc/VERSION.
//
//go:embed docs/redoc
var Redoc embed.FS
