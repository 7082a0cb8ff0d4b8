#!/usr/bin/env python3
"""Cold discovery with postfix-mta-sts-resolver's own resolver (Debian
package), on the same domain list and test world as bench-discover.

usage: peer_discover.py RESOLVER_IP DOMAINS_FILE CONCURRENCY
Run with SSL_CERT_FILE=<world ca.pem> SSL_CERT_DIR=/nonexistent so the peer
trusts the world's CA (see shared/spec/peer-postfix-mta-sts-resolver.md §12).
Prints one JSON object."""
import asyncio
import json
import resource
import sys
import time

import aiodns
import aiohttp
import aiohttp.connector
import aiohttp.resolver
from postfix_mta_sts_resolver.resolver import STSResolver, STSFetchResult

RESOLVER = sys.argv[1]

# Recipe B of the peer notes: every aiodns resolver (the peer's TXT lookups
# and aiohttp's host lookups) asks the world's DNS server.
_orig_init = aiodns.DNSResolver.__init__


def _init(self, *args, **kwargs):
    kwargs["nameservers"] = [RESOLVER]
    _orig_init(self, *args, **kwargs)


aiodns.DNSResolver.__init__ = _init
aiohttp.connector.DefaultResolver = aiohttp.resolver.AsyncResolver


async def main():
    domains = [d.strip() for d in open(sys.argv[2]) if d.strip()]
    conc = int(sys.argv[3])
    loop = asyncio.get_running_loop()
    res = STSResolver(loop=loop, timeout=20)
    sem = asyncio.Semaphore(conc)
    counts = {}

    async def one(d):
        async with sem:
            status, _ = await res.resolve(d)
            counts[status.name] = counts.get(status.name, 0) + 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(d) for d in domains))
    secs = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"impl": "postfix-mta-sts-resolver", "concurrency": conc,
                      "domains": len(domains), "seconds": round(secs, 3),
                      "per_second": round(len(domains) / secs, 1),
                      "results": counts, "peak_rss_kb": ru.ru_maxrss}))


asyncio.run(main())
