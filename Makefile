# Kizuna: one Makefile for the services, the CLI, the simulator and the tests.
# `make test` and `make run` install what is missing first (deploy/local/deps.sh),
# then re-enter make, so that pkg-config sees the freshly installed libraries.

SHELL    := /bin/bash
SANITIZE ?=

ifeq ($(SANITIZE),)
BUILD    ?= build
SANFLAGS :=
else
# A separate build folder, so sanitizer objects never mix with normal ones.
BUILD    ?= build/sanitize
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

GEN      := $(BUILD)/gen
PKGS     := rdkafka libpq libmicrohttpd libprotobuf-c libcurl jansson libjwt uuid libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       ?= cc
OPT      ?= -O2
BASEFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) -pthread -MMD -MP $(SANFLAGS) \
             -Icommon -I$(GEN) $(PKG_CFLAGS)
CFLAGS   := $(BASEFLAGS) -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers
# Generated protobuf code is not ours: compile it without -Werror.
GENFLAGS := $(BASEFLAGS) -w
LDFLAGS  += -pthread $(SANFLAGS)
LDLIBS   := $(PKG_LIBS) -lm

SERVICES := ingest segmentation scheduler dispatcher

# --- sources -------------------------------------------------------------
PROTOS      := $(wildcard proto/kizuna/v1/*.proto)
PROTO_C     := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_H     := $(PROTO_C:.c=.h)
PROTO_OBJ   := $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C))
COMMON_SRC  := $(wildcard common/*.c)
COMMON_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC))
CTL_SRC     := $(wildcard tools/kizunactl/*.c)
CTL_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(CTL_SRC))
SIM_SRC     := $(wildcard tests/line-sim/*.c)
SIM_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(SIM_SRC))
SIM_LIB_OBJ := $(filter-out %/main.o,$(SIM_OBJ))
UNIT_SRC    := $(wildcard tests/unit/*.c)
UNIT_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRC))
INTEG_SRC   := $(wildcard tests/integration/*.c)
INTEG_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(INTEG_SRC))

LIBCOMMON   := $(BUILD)/lib/libkizuna_common.a
LIBPROTO    := $(BUILD)/lib/libkizuna_proto.a
LIBSIM      := $(BUILD)/lib/libkizuna_linesim.a
SVC_BINS    := $(patsubst %,$(BUILD)/bin/kizuna-%,$(SERVICES))
SVC_LIBS    := $(patsubst %,$(BUILD)/lib/libkizuna_%.a,$(SERVICES))
CTL_BIN     := $(BUILD)/bin/kizunactl
SIM_BIN     := $(BUILD)/bin/line-sim
UNIT_BIN    := $(BUILD)/tests/unit
INTEG_BIN   := $(BUILD)/tests/integration

.PHONY: all build deps test test-unit test-integration run up down status lint fuzz fuzz-short bench clean
.DEFAULT_GOAL := all

all: $(SVC_BINS) $(CTL_BIN) $(SIM_BIN)

# Everything our objects include must exist before they compile.
$(COMMON_OBJ) $(CTL_OBJ) $(SIM_OBJ) $(UNIT_OBJ) $(INTEG_OBJ): | $(PROTO_H)
$(UNIT_OBJ): CFLAGS += -Itests/line-sim
# Tests name a service's header by its folder: "dispatcher/sender.h".
$(UNIT_OBJ) $(INTEG_OBJ): CFLAGS += -Iservices

# --- protobuf ------------------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

# Generated files import each other: generate every header before compiling
# any, and keep the generated sources (they are not throw-away intermediates).
$(PROTO_OBJ): | $(PROTO_H)
.SECONDARY: $(PROTO_C) $(PROTO_H)

$(BUILD)/obj/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GENFLAGS) -c $< -o $@

$(LIBPROTO): $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# --- our code ------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Each service's objects, all but main.o, form a library that tests link.
define service_rules
$(1)_SRC := $$(wildcard services/$(1)/*.c)
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/obj/%.o,$$(filter-out services/$(1)/main.c,$$($(1)_SRC)))
$$($(1)_OBJ) $(BUILD)/obj/services/$(1)/main.o: | $(PROTO_H)
$(BUILD)/lib/libkizuna_$(1).a: $$($(1)_OBJ)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/bin/kizuna-$(1): $(BUILD)/obj/services/$(1)/main.o $(BUILD)/lib/libkizuna_$(1).a $(LIBCOMMON) $(LIBPROTO)
	@mkdir -p $$(dir $$@)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

$(CTL_BIN): $(CTL_OBJ) $(LIBCOMMON) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The simulator's objects but main.o form a library that unit tests link.
$(LIBSIM): $(SIM_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SIM_BIN): $(BUILD)/obj/tests/line-sim/main.o $(LIBSIM) $(LIBCOMMON) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(UNIT_OBJ) $(SVC_LIBS) $(LIBSIM) $(LIBCOMMON) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(INTEG_BIN): $(INTEG_OBJ) $(SVC_LIBS) $(LIBCOMMON) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

build: all $(UNIT_BIN) $(INTEG_BIN)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- the two commands and the stack --------------------------------------
deps:
	@deploy/local/deps.sh

# Unit tests need no network; integration tests run against the real local
# stack, which the test command starts (and stops again if it started it).
test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-integration

# Criterion passes a test whose process leaks (LeakSanitizer only prints), so
# each suite's output is kept and any sanitizer report in it fails the run.
sanitizer_check = if grep -nE '(Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:' $(1); then \
	echo "sanitizer reports in $(1)"; exit 1; fi

test-unit: $(UNIT_BIN)
	@mkdir -p $(BUILD)/tests
	set -o pipefail; $(UNIT_BIN) --jobs 2 2>&1 | tee $(BUILD)/tests/unit.log
	@$(call sanitizer_check,$(BUILD)/tests/unit.log)

test-integration: $(INTEG_BIN) all
	@mkdir -p $(BUILD)/tests
	set -o pipefail; KIZUNA_BIN_DIR=$(BUILD)/bin deploy/local/stack.sh with-stack \
		env BUILD=$(BUILD) $(INTEG_BIN) --jobs 1 2>&1 | tee $(BUILD)/tests/integration.log
	@$(call sanitizer_check,$(BUILD)/tests/integration.log)

run: deps
	@$(MAKE) --no-print-directory all
	@KIZUNA_BIN_DIR=$(BUILD)/bin deploy/local/stack.sh run

up: deps
	@$(MAKE) --no-print-directory all
	@KIZUNA_BIN_DIR=$(BUILD)/bin deploy/local/stack.sh up

down:
	@deploy/local/stack.sh down

status: $(CTL_BIN)
	@KIZUNA_BIN_DIR=$(BUILD)/bin deploy/local/stack.sh status

lint:
	@deploy/local/lint.sh

# libFuzzer targets (clang, ASan + UBSan), one per parser of untrusted bytes
# (tests/fuzz/README.md): 1,000,000 inputs each; FUZZ_RUNS=N to change the
# count, FUZZ_TARGETS="jwt httpd" to run some. fuzz-short is CI's pass:
# 20,000 inputs or 20 s per target, whichever comes first.
fuzz:
	@tests/fuzz/run.sh

fuzz-short:
	@FUZZ_RUNS=$${FUZZ_RUNS:-20000} FUZZ_MAX_TIME=$${FUZZ_MAX_TIME:-20} tests/fuzz/run.sh

# Benchmarks, not tests: each bench/<name>/run.sh (and bench/<name>/<part>/run.sh,
# such as bench/segmentation/follow) starts what it needs and prints its
# numbers; docs/benchmarks.md records runs and how to repeat them.
bench: deps
	@$(MAKE) --no-print-directory all
	@for b in bench/*/run.sh bench/*/*/run.sh; do [ -x "$$b" ] || continue; echo "== $$b"; BUILD=$(BUILD) "$$b" || exit 1; done

clean:
	rm -rf build
