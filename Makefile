# authguard: build, install, test, bench. Run as root on Debian 12.
#   make install   build in release mode, install, initialise, print the PAM line
#   make test      every test (installs the Debian packages the tests need)
#   make lint      cargo fmt --check and clippy with warnings as errors
#   make bench     admission latency and whole-PAM-run benchmarks

CARGO      ?= cargo
MULTIARCH  := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
PAMDIR     ?= /usr/lib/$(MULTIARCH)/security
SBINDIR    ?= /usr/sbin
CONFDIR    ?= /etc/authguard
UNITDIR    ?= /lib/systemd/system
PAM_LINE   := auth requisite pam_authguard.so

# What building needs (libpam0g-dev: the module links libpam) and what the
# end-to-end tests drive (a real sshd, client, pamtester, sqlite3 for locks).
BUILD_DEPS := build-essential pkg-config libpam0g-dev
TEST_DEPS  := openssh-server openssh-client sshpass pamtester sqlite3 openssl util-linux libpam-modules nftables iproute2 python3 systemd

.PHONY: all build install deps test-deps test lint bench clean

all: build

# Installs the Debian packages in $(1) that are missing, and only those.
define apt_ensure
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_ensure,$(BUILD_DEPS))

test-deps: deps
	$(call apt_ensure,$(TEST_DEPS))

build: deps
	$(CARGO) build --release -p pam_authguard -p guardctl

install: build
	install -d -m 0755 $(PAMDIR) $(SBINDIR)
	install -m 0644 target/release/libpam_authguard.so $(PAMDIR)/pam_authguard.so
	install -m 0755 target/release/guardctl $(SBINDIR)/guardctl
	install -d -m 0755 $(CONFDIR)
	@if [ -e $(CONFDIR)/authguard.toml ]; then \
		echo "keeping existing $(CONFDIR)/authguard.toml"; \
	else \
		install -m 0644 packaging/authguard.toml $(CONFDIR)/authguard.toml; \
	fi
	$(SBINDIR)/guardctl init
	install -d -m 0755 $(UNITDIR)
	install -m 0644 packaging/authguard.service $(UNITDIR)/authguard.service
	@if [ -d /run/systemd/system ]; then \
		systemctl daemon-reload && systemctl enable --now authguard.service && \
		echo "authguard.service enabled and started"; \
	else \
		echo "systemd is not running here: start the firewall daemon yourself: guardctl daemon &"; \
	fi
	@echo
	@echo "authguard is installed. Add this line to /etc/pam.d/sshd, above '@include common-auth':"
	@echo
	@echo "    $(PAM_LINE)"
	@echo
	@echo "Then check the set-up with: guardctl check"

test: test-deps
	$(CARGO) build --workspace
	timeout 1800 $(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: test-deps
	$(CARGO) build --release -p pam_authguard -p guardctl -p authguard-bench
	./target/release/authguard-bench all

clean:
	$(CARGO) clean
