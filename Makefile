# mailca — the commands a developer and CI need.
#
#   make run     build mailca and run it on ./mailca-data (created on first run)
#   make test    install what the tests need (Debian packages, as root) and run them all
#   make check   gofmt, go vet, staticcheck and the race-enabled tests
#   make bench   the benchmarks whose figures docs/performance.md reports

GO        ?= go
DATA      ?= mailca-data
BIN       := bin/mailca
# Real S/MIME clients the tests drive: OpenSSL, gpgsm (GnuPG), NSS tools;
# SoftHSM2 for the PKCS#11 (HSM) tests; Chromium for the browser tests.
DEB_PKGS  := openssl gpgsm gpg-agent libnss3-tools softhsm2 chromium
# The programs those packages provide, checked before installing.
DEB_TOOLS := openssl gpgsm gpg-agent gpgconf certutil pk12util cmsutil softhsm2-util chromium
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The PostgreSQL server the store conformance suite and the multi-node
# tests use (MAILCA_TEST_POSTGRES_URL overrides it).
PG_HOST   ?= 127.0.0.1

.PHONY: all build run test deps postgres check bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/mailca

run: build
	./$(BIN) init --dir $(DATA)
	./$(BIN) serve --dir $(DATA)

# deps installs the Debian packages of the real-client tests when a tool is
# missing: with apt-get when running as root, else it says what to install.
deps:
	@missing=""; for t in $(DEB_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing"; \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS); \
		else \
			echo "install the Debian packages: $(DEB_PKGS)"; exit 1; \
		fi; \
	fi

# postgres starts the machine's PostgreSQL cluster when it is installed
# but not answering (as root, with Debian's pg_ctlcluster); the tests that
# need it fail under CI=true when it cannot be reached.
postgres:
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h $(PG_HOST); then \
		if [ "$$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then \
			for v in $$(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect $$v main start || true; done; \
			for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h $(PG_HOST) && break; sleep 1; done; \
		fi; \
	fi

# CI=true makes every test that lacks a tool fail rather than skip.
test: deps postgres
	$(GO) vet ./...
	$(GO) test -timeout 30m ./...
	$(GO) test -timeout 10m -run '^$$' -bench . -benchtime 1x ./...

check: deps postgres
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) test -race -timeout 30m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s -count 3 ./internal/ca/
	$(GO) test -run '^$$' -bench InviteCSV -benchtime 1x -count 3 ./internal/enrol/
	$(GO) test -run '^$$' -bench Deliver -count 3 ./internal/outbox/
	$(GO) test -run '^$$' -bench EnrolmentHTTP -benchtime 3000x -count 3 ./internal/e2e/
	$(GO) test -run '^$$' -bench OCSPHTTP -benchtime 5s -count 3 ./internal/web/pki/
	$(GO) test -run '^$$' -bench ConsoleLists -count 3 ./internal/e2e/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/mailbox/
	$(GO) test -run '^$$' -fuzz FuzzParseCSR -fuzztime 60s ./internal/ca/
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime 60s ./internal/csvbatch/
	$(GO) test -run '^$$' -fuzz FuzzCompose -fuzztime 60s ./internal/mail/
	$(GO) test -run '^$$' -fuzz FuzzOCSPHandler -fuzztime 60s ./internal/web/pki/
	$(GO) test -run '^$$' -fuzz FuzzParsePKCS11URI -fuzztime 60s ./internal/keys/

clean:
	rm -rf bin
