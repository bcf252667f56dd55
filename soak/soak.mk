# make soak: mixed traffic through the whole stack at a steady rate, then a
# check that nothing failed, memory stayed flat and the zone emptied again.
#   make soak SOAK_SECONDS=120 SOAK_RATE=2
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 2
SOAK_ARGS    ?=

.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory module tool-server
	/usr/bin/python3 soak/soak.py --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE) $(SOAK_ARGS)
