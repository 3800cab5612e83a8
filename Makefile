# presenced: make run | make demo | make test | make test-all | make build | make dist | make bench | make fuzz | make lint | make phoneapp
GO        ?= go
BIN       := bin/presenced
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
NFPM      := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
# The packages' version: the tag without its v, else 0.0.0~git.<commit>
# (Debian versions start with a digit); the binaries say the same.
DIST_VERSION ?= $(shell (git describe --tags --always 2>/dev/null || echo dev) | sed -E 's/^v([0-9])/\1/; t; s/^/0.0.0~git./')

# Every fuzz target, as package:Target.
FUZZ_TARGETS := \
	./asterisk/fastagi:FuzzReadEnv ./asterisk/fastagi:FuzzReadReply ./asterisk/fastagi:FuzzQuote \
	./core/presence:FuzzDecode ./core/presence:FuzzEncodeRoundTrip ./core/presence:FuzzReadEvaluated ./asterisk/ami:FuzzUnescapeC \
	./core/dialplan:FuzzParseRequest ./core/presence:FuzzDecodeRecord \
	./core/hints:FuzzParseDeviceState ./core/dialplan/conf:FuzzParse ./asterisk/ami:FuzzParseFrame ./asterisk/ari:FuzzEvent \
	./views/httpapi:FuzzSetBody ./views/httpapi:FuzzWSMessage ./views/httpapi:FuzzParseTokens ./views/webhook:FuzzTemplate ./views/webhook:FuzzDecodeValue ./views/webhook:FuzzValidate \
	./views/webhook:FuzzTargetURL ./core/hints:FuzzPresenceJSON ./core/hints:FuzzPresenceDecode ./internal/redact:FuzzRedact \
	./core/calls:FuzzTracker ./core/calls:FuzzValidNumber ./core/calls:FuzzParsePolicy ./core/voicemail:FuzzMessageWaiting ./core/forward:FuzzParseKind \
	./views/xuc:FuzzParseUsers ./views/appws:FuzzDecode ./views/httpapi:FuzzPhoneEvent ./views/dpma:FuzzAnswer

.PHONY: all build run demo test test-all bench load fuzz lint clean phoneapp dist

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/presenced

# Starts presenced with its defaults: FastAGI on 127.0.0.1:4573, the board
# and the API on http://127.0.0.1:4574/, data in ./data.
run: build
	./$(BIN) serve

# presenced against the project's emulated Asterisk, with twelve made-up
# users whose phones ring: the board, the API and the streams without a PBX.
demo: build
	$(GO) run ./cmd/presenced-demo -presenced $(BIN)

# Formatting, vet, then every test but the long ones with the race
# detector; the seed corpora of the fuzz targets run as ordinary tests. The
# corrupt-store test runs in a build without the race detector (see
# storage/store/corrupt_test.go). The libraries presenced does not use are shown
# wrong in libdefects, a module of its own.
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -short -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run 'FlippedBytes' ./storage/store
	cd libdefects && $(GO) vet ./... && $(GO) test -count=1 ./...

# make test, then the long tests (kill -9, the cluster, the browser): those
# that call testenv.Long, listed by ./internal/testenv/longtests.
test-all: test
	@$(GO) run ./internal/testenv/longtests | while read -r pkg run; do \
	  echo "== long tests of $$pkg"; \
	  $(GO) test -race -count=1 -timeout 30m -run "$$run" $$pkg || exit 1; \
	done

# Go benchmarks, then the load command (presenced against the floor).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...
	$(GO) run ./cmd/agiload -presenced $(BIN) -c 32 -d 5s -rounds 5

load: build
	$(GO) run ./cmd/agiload -presenced $(BIN) -c 32 -d 5s -rounds 5

fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "== $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# The sample Digium/Sangoma phone app, as the zip res_digium_phone.conf
# names (its md5sum printed for the config).
phoneapp:
	mkdir -p bin
	rm -f bin/presenced-phoneapp.zip
	cd phoneapp/presenced && python3 -m zipfile -c ../../bin/presenced-phoneapp.zip app.js app.json
	md5sum bin/presenced-phoneapp.zip

# Static binaries for linux amd64 and arm64, and a .deb of each (the
# systemd unit running /usr/bin/presenced, the example settings as
# /etc/presenced/presenced.env, a presenced system user, /var/lib/presenced).
dist:
	rm -rf dist
	@for arch in amd64 arm64; do \
	  rm -rf dist/pkg; mkdir -p dist/pkg; \
	  echo "== linux/$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w -X main.version=$(DIST_VERSION)' -o dist/presenced-linux-$$arch ./cmd/presenced || exit 1; \
	  cp dist/presenced-linux-$$arch dist/pkg/presenced; \
	  sed 's|/usr/local/bin/presenced|/usr/bin/presenced|' deploy/presenced.service > dist/pkg/presenced.service; \
	  DIST_ARCH=$$arch DIST_VERSION='$(DIST_VERSION)' $(GO) run $(NFPM) package --config deploy/nfpm.yaml --packager deb --target dist/ || exit 1; \
	done
	rm -rf dist/pkg
	ls -l dist

clean:
	rm -rf bin dist
