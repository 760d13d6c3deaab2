# SPDX-License-Identifier: Apache-2.0
"""Runs a C test binary against a fresh nats-server (NVCF_TEST_NATS_URL)."""
import os
import subprocess
import sys

import nvcfstack


def main():
    with nvcfstack.Nats() as nats:
        env = dict(os.environ, NVCF_TEST_NATS_URL=nats.url,
                   NVCF_TEST_CLOSED_PORT=str(nvcfstack.free_port()))
        return subprocess.call(sys.argv[1:], env=env)


if __name__ == "__main__":
    sys.exit(main())
