package server

import (
	"bytes"
	"io/fs"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	echoSwagger "github.com/swaggo/echo-swagger"
	"github.com/swaggo/swag"

	"userapi/api"
)

// swaggerDoc hands our own OpenAPI document to swag's registry, which is
// where echo-swagger reads the document that Swagger UI shows.
type swaggerDoc struct{ json string }

func (d swaggerDoc) ReadDoc() string { return d.json }

var registerSwagger sync.Once

// swaggerUI serves Swagger UI and its assets from the binary, showing specJSON.
// The page is our own (swaggerPage); echo-swagger serves the assets and the
// document.
func swaggerUI(specJSON []byte) echo.HandlerFunc {
	registerSwagger.Do(func() { swag.Register(swag.Name, swaggerDoc{json: string(specJSON)}) })
	assets := problemOn404(echoSwagger.EchoWrapHandler(echoSwagger.URL("doc.json")))
	return func(c echo.Context) error {
		if c.Request().URL.Path == "/docs/index.html" {
			return c.HTML(http.StatusOK, swaggerPage)
		}
		return assets(c)
	}
}

// swaggerPage is Swagger UI's page without the standalone layout's top bar,
// whose "Select a definition" box is noise for a service with one document,
// and with the Authorize bar moved above the long introduction, so that it
// shows without scrolling. Authorization is kept across reloads (in the
// browser's local storage) until Logout.
const swaggerPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>userapi: interactive documentation</title>
  <link rel="stylesheet" href="./swagger-ui.css">
  <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32">
  <style>
    html { box-sizing: border-box; overflow-y: scroll; }
    *, *:before, *:after { box-sizing: inherit; }
    body { margin: 0; background: #fafafa; }
    /* The Authorize bar first, the introduction after it. */
    .swagger-ui > div:has(> .scheme-container) { display: flex; flex-direction: column; }
    .swagger-ui .scheme-container { order: -1; margin: 0; }
  </style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="./swagger-ui-bundle.js"></script>
  <script>
    window.onload = () => {
      window.ui = SwaggerUIBundle({
        url: "doc.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        persistAuthorization: true,
        validatorUrl: null,
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
      });
    };
  </script>
</body>
</html>
`

// problemOn404 turns the plain-text error that next writes for a file it
// cannot serve (echo-swagger answers through http.FileServer: 404 for an
// unknown name, 500 for a name that is not a valid path, such as one with a
// stray query byte) into the usual 404 problem. The handler serves only
// files embedded in the binary, so any such failure means no such file, and
// every error the service gives stays a problem document.
func problemOn404(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		orig := c.Response()
		w := &errorCatcher{ResponseWriter: orig}
		c.SetResponse(echo.NewResponse(w, c.Echo()))
		err := next(c)
		c.SetResponse(orig)
		if err == nil && w.failed {
			orig.Header().Del("Content-Type")
			return echo.ErrNotFound
		}
		return err
	}
}

// errorCatcher passes a response through unless its status is an error; it
// then drops the status and the body and notes the failure.
type errorCatcher struct {
	http.ResponseWriter
	failed bool
}

func (w *errorCatcher) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		w.failed = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorCatcher) Write(b []byte) (int, error) {
	if w.failed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// redocPage is the ReDoc page. Its script is served from this server, so the
// page works with no internet access.
const redocPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>userapi reference</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
`

// redocLogoURL is the one asset the ReDoc bundle fetches from the vendor's
// CDN (its footer logo); the bundle is served with it pointing here instead.
const (
	redocLogoURL   = "https://cdn.redoc.ly/redoc/logo-mini.svg"
	localRedocLogo = "/redoc/logo-mini.svg"
	redocLogo      = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#32329f"/><path d="M4 4h8v2H4zm0 3h8v2H4zm0 3h5v2H4z" fill="#fff"/></svg>`
)

// redocAssets serves the embedded ReDoc bundle and its licences under /redoc/.
func redocAssets() echo.HandlerFunc {
	dir, err := fs.Sub(api.Redoc, "docs/redoc")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	bundle, err := fs.ReadFile(dir, "redoc.standalone.js")
	if err != nil {
		panic(err)
	}
	bundle = bytes.ReplaceAll(bundle, []byte(redocLogoURL), []byte(localRedocLogo))
	files := http.StripPrefix("/redoc/", http.FileServerFS(dir))
	return func(c echo.Context) error {
		switch name := strings.TrimPrefix(c.Request().URL.Path, "/redoc/"); name {
		case "redoc.standalone.js":
			c.Response().Header().Set("Cache-Control", "public, max-age=86400")
			return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", bundle)
		case "logo-mini.svg":
			return c.Blob(http.StatusOK, "image/svg+xml", []byte(redocLogo))
		case "LICENSE", "VERSION", "redoc.standalone.js.LICENSE.txt":
			files.ServeHTTP(c.Response(), c.Request())
			return nil
		default:
			return echo.ErrNotFound
		}
	}
}
