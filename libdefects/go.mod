module github.com/presenced/presenced/libdefects

go 1.26.0

require (
	github.com/CyCoreSystems/agi v0.6.4
	github.com/CyCoreSystems/ari/v5 v5.3.1
	github.com/presenced/presenced v0.0.0
)

require (
	github.com/go-stack/stack v1.8.0 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/inconshreveable/log15 v0.0.0-20201112154412-8562bdadbbac // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/rotisserie/eris v0.4.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/presenced/presenced => ../
