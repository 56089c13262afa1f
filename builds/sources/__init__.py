"""Sources of a build: archive checks, git imports, the content-addressed source store, `.dockerignore` matching,
context planning and streaming, and the file tree shown on a source's page."""
