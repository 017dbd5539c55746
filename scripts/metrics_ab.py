"""What the console's counters cost the data path: broker CPU per million records,
produce and consume (`sluice perf`), for three brokers in one run: a base build (before
the counters), the new build without --metrics, and the new build with --metrics scraped
every 5 s. Rounds alternate the brokers' order; medians are printed with ratios to base.
CPU is utime + stime from /proc, in clock ticks (10 ms): use millions of records.

Usage: metrics_ab.py SLUICED_BASE SLUICED_NEW SLUICE_CLI RECORDS ROUNDS
"""
import os, socket, statistics, subprocess, sys, tempfile, threading, time

base, new, cli, records, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Broker:
    def __init__(self, name, binary, metrics):
        self.name, self.dir = name, tempfile.mkdtemp()
        self.port = free()
        args = [binary, "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir]
        self.metrics = None
        if metrics:
            self.metrics = free()
            args += ["--metrics", f"127.0.0.1:{self.metrics}"]
        self.p = subprocess.Popen(args, env={**os.environ, "RUST_LOG": "warn"})
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port)).close(); break
            except OSError:
                time.sleep(0.05)
        self.stop = False
        if self.metrics:
            threading.Thread(target=self.scrape, daemon=True).start()

    def scrape(self):
        while not self.stop:
            try:
                s = socket.create_connection(("127.0.0.1", self.metrics))
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                while s.recv(65536):
                    pass
                s.close()
            except OSError:
                pass
            time.sleep(5)

    def run(self, args):
        before = cpu(self.p.pid)
        subprocess.run([cli, "--bootstrap-server", f"127.0.0.1:{self.port}"] + args,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return (cpu(self.p.pid) - before) / records * 1e6


brokers = [Broker("base", base, True), Broker("new, no --metrics", new, False),
           Broker("new, --metrics scraped", new, True)]
results = {b.name: {"produce": [], "consume": []} for b in brokers}
for r in range(rounds):
    for b in (brokers if r % 2 == 0 else brokers[::-1]):
        topic = f"bench-{r}"
        results[b.name]["produce"].append(b.run(
            ["perf", "produce", "--topic", topic, "--num-records", str(records), "--record-size", "100",
             "--throughput", "-1", "--producer-props", "acks=1", "linger.ms=5", "batch.size=1000000"]))
        results[b.name]["consume"].append(b.run(
            ["perf", "consume", "--topic", topic, "--messages", str(records)]))
        b.run(["topic", "delete", topic])
for b in brokers:
    b.stop = True
    b.p.terminate()
print(f"{records} records of 100 bytes per run, {rounds} rounds; broker CPU s per million records (median, all runs)")
for phase in ("produce", "consume"):
    ref = statistics.median(results["base"][phase])
    for b in brokers:
        xs = results[b.name][phase]
        m = statistics.median(xs)
        print(f"{phase:8} {b.name:24} {m:.4f}  ratio {m / ref:.3f}  runs {' '.join(f'{x:.4f}' for x in xs)}")
