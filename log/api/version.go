package api

// PathVersion is GET /v1/version on every keycommit server (log, witness,
// monitor): the Version of the binary serving it.
const PathVersion = "/v1/version"

// Version says which build of keycommit is running, from the Go build
// information (runtime/debug.ReadBuildInfo). It is the body of GET
// /v1/version and of `keycommit version --json`.
type Version struct {
	// Module is the module path, github.com/keycommit/keycommit.
	Module string `json:"module"`
	// Version is the module version the binary was built at: a tag, a
	// pseudo-version from the VCS state, or "(devel)".
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, and Time its
	// commit time (RFC 3339), when the build recorded them.
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	// Modified is true when the work tree had uncommitted changes.
	Modified bool `json:"modified"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}
