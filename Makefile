# ngx_mcp_auth — build, test and run.
#
#   make            module (.so), core library, tool server, unit tests -> build/
#   make test       installs what is missing, builds (-j$(nproc)), runs unit + integration tests
#   make run        installs what is missing, builds, runs the whole stack on loopback
#   make install    module -> /usr/lib/nginx/modules, tool server, mcp-auth-keygen and
#                   mcp-auth-admin -> /usr/local/bin
#   make deb        installs the packaging tools if missing, builds the Debian packages
#                   (debian/, dpkg-buildpackage, lintian) -> build/deb/
#   make deps       installs what the build, the tests and make deb need (scripts/deps.sh)
#   make NGINX_SRC=/path/to/nginx-1.x   builds the module against another nginx tree
#
# Building first checks that the headers and the nginx tree it needs are there
# (the check-deps block below: file tests, as make reads this file) and names
# what is missing, with its package.

# SANITIZE=1 builds into its own folder so it never mixes with the normal build
ifeq ($(SANITIZE),1)
BUILD     ?= build-san
endif
BUILD     ?= build
NGINX_SRC ?= /usr/share/nginx/src
PREFIX    ?= /usr/local
MODDIR    ?= /usr/lib/nginx/modules
SANITIZE  ?=
PYTEST    ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?=
RUN_PORT  ?= 8080

CXX       ?= g++
# Debian's hardening flags (dpkg-buildflags with hardening=+all; the nginx glue
# gets dpkg-buildflags itself, scripts/build-module.sh) in every build but the
# sanitized one: the tests and the packages (make deb) use the same objects.
ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
HARDEN_CXXFLAGS :=
HARDEN_LDFLAGS  :=
else
SAN_FLAGS :=
HARDEN_CXXFLAGS := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -Wformat -Werror=format-security
HARDEN_LDFLAGS  := -Wl,-z,relro -Wl,-z,now
endif

CORE_CXXFLAGS := -std=c++17 -O2 -g -fPIC -fvisibility=hidden \
                 -Wall -Wextra -Werror -Wshadow -Wconversion \
                 -MMD -MP -Isrc $(SAN_FLAGS) $(HARDEN_CXXFLAGS)
CORE_LIBS     := -ljwt -lcjson -lcrypto

CORE_SRCS := $(wildcard src/*.cpp)
CORE_OBJS := $(CORE_SRCS:src/%.cpp=$(BUILD)/core/%.o)
UNIT_SRCS := $(wildcard t/unit/*.cpp)
UNIT_OBJS := $(UNIT_SRCS:t/unit/%.cpp=$(BUILD)/unit/%.o)

MODULE := $(BUILD)/ngx_http_mcp_auth_module.so
CORE   := $(BUILD)/libmcpauth.a
UNIT   := $(BUILD)/unit-tests

.PHONY: all module core unit tool-server test unit-test integration-test run run-cluster deps \
        install uninstall clean keygen deb
.DEFAULT_GOAL := all

# check-deps: what the compiler and nginx's configure need, as FILE:PACKAGE.
# Checked when make reads this file, for every goal that builds (not for the
# goals that install what is missing first and then build in a sub-make).
DEP_FILES := /usr/include/jwt.h:libjwt-dev /usr/include/cjson/cJSON.h:libcjson-dev \
             /usr/include/openssl/evp.h:libssl-dev /usr/include/hiredis/hiredis.h:libhiredis-dev \
             /usr/include/event2/event.h:libevent-dev /usr/include/sqlite3.h:libsqlite3-dev
NO_DEPS_GOALS := deps test run run-cluster soak bench bench-deps bench-tool-server deb clean \
                 keygen uninstall
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
# the unit tests' GoogleTest only for the goals that build them
ifneq ($(filter all unit unit-test $(UNIT),$(or $(MAKECMDGOALS),all)),)
DEP_FILES += /usr/include/gtest/gtest.h:libgtest-dev
endif
lp := (
rp := )
dep_file = $(word 1,$(subst :, ,$(1)))
dep_pkg  = $(word 2,$(subst :, ,$(1)))
DEPS_MISSING := $(foreach d,$(DEP_FILES),$(if $(wildcard $(call dep_file,$(d))),,$(call dep_file,$(d)) $(lp)$(call dep_pkg,$(d))$(rp)))
DEPS_MISSING += $(if $(wildcard $(NGINX_SRC)/configure $(NGINX_SRC)/auto/configure),,$(NGINX_SRC) $(lp)no nginx source tree: nginx-dev, or set NGINX_SRC$(rp))
ifneq ($(strip $(DEPS_MISSING)),)
$(error missing $(strip $(DEPS_MISSING)); run `make deps` (scripts/deps.sh) to install what is missing)
endif
endif

all: module tool-server $(UNIT)

include tool-server/tool-server.mk
# make bench, make fuzz, make soak: their own fragments
-include bench/bench.mk
-include fuzz/fuzz.mk
-include soak/soak.mk

core: $(CORE)
module: $(MODULE)
unit: $(UNIT)
tool-server: $(BUILD)/mcp-tool-server

$(BUILD)/core/%.o: src/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CORE_CXXFLAGS) -c $< -o $@

$(CORE): $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/unit/%.o: t/unit/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(filter-out -fvisibility=hidden,$(CORE_CXXFLAGS)) -c $< -o $@

$(UNIT): $(UNIT_OBJS) $(CORE)
	$(CXX) $(SAN_FLAGS) $(HARDEN_LDFLAGS) -o $@ $(UNIT_OBJS) $(CORE) -lgtest -lgtest_main -pthread $(CORE_LIBS)

# The nginx glue: ngx_mcp_auth_module.c and the files in nginx/ (config lists
# them for nginx's build).
GLUE := ngx_mcp_auth_module.c $(wildcard nginx/*.c nginx/*.h)

# The module is compiled by nginx's own build system (so the binary
# compatibility signature matches the nginx it loads into); the C++ core is
# linked in as a static library.  See scripts/build-module.sh.
# ('+': nginx's own make shares our jobserver, and says nothing about it)
$(MODULE): $(CORE) config $(GLUE) src/mcp_auth.h src/zone_index.h scripts/build-module.sh
	+MCP_AUTH_BUILD="$(abspath $(BUILD))" SAN_FLAGS="$(SAN_FLAGS)" \
	  scripts/build-module.sh "$(NGINX_SRC)" "$(abspath $(BUILD))"

-include $(CORE_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)

deps:
	@scripts/deps.sh

unit-test: $(UNIT)
	$(UNIT) --gtest_brief=1
	@echo "again, every endpoint over a deferred (Redis-style) store:"
	MCPA_UNIT_DEFERRED=1 $(UNIT) --gtest_brief=1

integration-test: module tool-server
	$(PYTEST) -q t $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@$(MAKE) --no-print-directory unit-test
	@$(MAKE) --no-print-directory -j$$(nproc) fuzz-build
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory integration-test

run: deps
	@$(MAKE) --no-print-directory module tool-server
	scripts/run.sh --port $(RUN_PORT)

# The two-node variant: two edges and two tool servers on one Redis
# (SENTINEL=1: on a Redis primary, a replica and three Sentinels).
run-cluster: deps
	@$(MAKE) --no-print-directory module tool-server
	scripts/run-cluster.sh$(if $(filter-out 0,$(SENTINEL)), --sentinel)

keygen:
	@scripts/mcp-auth-keygen

# The Debian packages (debian/) -> build/deb/, checked with lintian; built from
# a copy of the tree that starts with the core's and tool server's objects
# built here (scripts/build-deb.sh).
deb:
	@scripts/deps.sh --deb
	@$(MAKE) --no-print-directory core tool-server
	scripts/build-deb.sh build/deb

install: module tool-server
	install -d $(DESTDIR)$(MODDIR) $(DESTDIR)$(PREFIX)/bin
	install -m 0644 $(MODULE) $(DESTDIR)$(MODDIR)/
	install -m 0755 $(BUILD)/mcp-tool-server $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 scripts/mcp-auth-keygen $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 scripts/mcp-auth-admin $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(DESTDIR)$(MODDIR)/ngx_http_mcp_auth_module.so \
	      $(DESTDIR)$(PREFIX)/bin/mcp-tool-server $(DESTDIR)$(PREFIX)/bin/mcp-auth-keygen \
	      $(DESTDIR)$(PREFIX)/bin/mcp-auth-admin

clean:
	rm -rf $(BUILD)
