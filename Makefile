# authguard: build, install, test, bench. Run as root on Debian 12.
#   make deb       build the Debian package into target/debian/
#   make install   build the package, install it with apt, print the PAM line
#   make test      every test (installs the Debian packages the tests need)
#   make lint      cargo fmt --check and clippy with warnings as errors
#   make bench     admission latency, whole-PAM-run, firewall and sshd-log benchmarks

CARGO      ?= cargo
DEB_ARCH   := $(shell dpkg --print-architecture)
PAM_LINE   := auth requisite pam_authguard.so

# What building needs (libpam0g-dev: the module links libpam) and what the
# end-to-end tests drive (a real sshd, client, pamtester, sqlite3 for locks,
# exim4 as the MTA abuse reports are delivered through).
BUILD_DEPS := build-essential pkg-config libpam0g-dev
TEST_DEPS  := exim4-daemon-light debootstrap wget curl openssh-server openssh-client sshpass pamtester sqlite3 openssl util-linux libpam-modules nftables iproute2 python3 systemd lintian libmaxmind-db-writer-perl prometheus-node-exporter python3-prometheus-client
# The peers the bench's log part measures `guardctl scan` against (it runs
# only their parsers: sshg-parser, fail2ban-regex). The geo part: GNU time
# (peak RSS of an import), the Perl modules xt_geoip_build needs (the script
# itself is unpacked, not installed: its package recommends a DKMS module),
# MaxMind::DB::Writer and python3-maxminddb (the lookup peer's DB and reader).
# The flood's slow disk: dmsetup (dm-delay where the kernel has it), losetup
# (util-linux) and mkfs.ext4 (e2fsprogs).
BENCH_DAEMONS := sshguard fail2ban
BENCH_DEPS := $(BENCH_DAEMONS) time dmsetup e2fsprogs util-linux libtext-csv-xs-perl libnet-cidr-lite-perl libmaxmind-db-writer-perl python3-maxminddb

.PHONY: all build assets deb install deps test-deps test fuzz-build fuzz lint bench clean

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

# Man pages and bash completion, generated from the CLI definition and the
# shipped config (xtask), gzipped as Debian wants them.
assets: build
	$(CARGO) run -q --release -p xtask -- assets target/release/assets
	gzip -9nf target/release/assets/guardctl.8 target/release/assets/authguard.toml.5

# The Debian package, into target/debian/ (cargo-deb installed if missing).
deb: assets
	@command -v cargo-deb >/dev/null 2>&1 || $(CARGO) install cargo-deb --locked --version 3.8.0
	rm -f target/debian/authguard_*.deb
	$(CARGO) deb -p guardctl --no-build --variant $(DEB_ARCH)

# Installs the package with apt, so its dependencies resolve.
install: deb
	DEBIAN_FRONTEND=noninteractive apt-get install -y ./target/debian/authguard_*.deb
	@if [ ! -d /run/systemd/system ]; then \
		echo "systemd is not running here: start the firewall daemon yourself: guardctl daemon &"; \
	fi
	@echo
	@echo "authguard is installed. Add this line to /etc/pam.d/sshd, above '@include common-auth':"
	@echo
	@echo "    $(PAM_LINE)"
	@echo
	@echo "Then check the set-up with: guardctl check"

# The package tests (tests/tests/package.rs) install target/debian/*.deb
# on this machine, so the package is built first.
test: test-deps deb fuzz-build
	$(CARGO) build --workspace
	timeout 1800 $(CARGO) test --workspace

# The fuzz targets (fuzz/, outside the workspace) must keep compiling.
fuzz-build:
	$(CARGO) build --manifest-path fuzz/Cargo.toml

# Runs the parser fuzz target for FUZZ_SECONDS with cargo-fuzz (libFuzzer
# needs nightly flags: RUSTC_BOOTSTRAP lets the stable toolchain take them).
FUZZ_SECONDS ?= 300
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run parse_line corpus/parse_line -- -max_total_time=$(FUZZ_SECONDS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# sshguard's and fail2ban's daemons would ban addresses in the host's
# firewall: when the bench installs them, their services are masked first,
# so neither starts (`systemctl unmask sshguard fail2ban` to use them).
bench: test-deps
	@if [ -d /run/systemd/system ]; then \
		for p in $(BENCH_DAEMONS); do \
			dpkg -s $$p >/dev/null 2>&1 || systemctl mask $$p.service; \
		done; \
	fi
	$(call apt_ensure,$(BENCH_DEPS))
	$(CARGO) build --release -p pam_authguard -p guardctl -p authguard-bench
	./target/release/authguard-bench all

clean:
	$(CARGO) clean
