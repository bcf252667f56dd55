# make soak: the bounded caches filled first, then mixed traffic through the
# whole stack at a steady rate (and a client looping initialize), then a
# check that nothing failed, private memory stopped growing (least-squares
# slope after a warm-up, see soak/soak.py), the tool server held its session
# caps and the zone emptied again.
#   make soak SOAK_SECONDS=180 SOAK_RATE=2
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 2
SOAK_ARGS    ?=

.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory module tool-server
	/usr/bin/python3 soak/soak.py --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE) $(SOAK_ARGS)
