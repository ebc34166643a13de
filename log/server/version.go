package server

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/keycommit/keycommit/log/api"
)

// BuildVersion returns the running binary's version, VCS revision and Go
// version from its build information.
func BuildVersion() api.Version {
	v := api.Version{Module: "github.com/keycommit/keycommit", Version: "(devel)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// VersionHandler serves GET /v1/version (api.PathVersion): BuildVersion
// as JSON. Every keycommit server mounts it.
func VersionHandler() http.Handler {
	v := BuildVersion()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, http.StatusOK, &v)
	})
}
