# The README's two commands: `make run` and `make test`. Both install missing
# Debian packages first (scripts/install-deps), then configure and build.
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build run demo test test-asan bench fuzz clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	@meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null

# The daemon in the foreground on its built-in defaults (127.0.0.1:8461,
# SQLite cache), printing the line to add to Postfix; Ctrl-C stops it.
run: build
	@$(BUILD)/daemon/mta-stsd --no-config

# A short tour of the mta-sts command-line tool.
demo: build
	@scripts/demo $(BUILD)

test: build
	@scripts/run-tests $(BUILD)

# The whole suite again under AddressSanitizer + UBSan.
$(ASAN_BUILD)/build.ninja:
	@meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Dbuildtype=debug >/dev/null

test-asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) >/dev/null
	@UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		scripts/run-tests $(ASAN_BUILD)

bench: build
	@bench/run-parse $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
