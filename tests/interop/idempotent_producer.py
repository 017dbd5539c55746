"""Produces N records with confluent-kafka's idempotent producer (enable.idempotence).

Usage: idempotent_producer.py HOST:PORT TOPIC N. Exits non-zero unless every record is
delivered without error. Also produces with kafka-python's default producer (idempotent
in kafka-python 3.x) to TOPIC-kp, 1000 records, and checks their offsets.
"""
import sys

from confluent_kafka import Producer
from kafka import KafkaProducer

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors = []
p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2,
              "batch.num.messages": 500, "compression.type": "lz4"})
for i in range(n):
    while True:
        try:
            p.produce(topic, value=f"v{i}".encode(), partition=0,
                      on_delivery=lambda err, msg: err and errors.append(err))
            break
        except BufferError:
            p.poll(0.05)
    if i % 1000 == 0:
        p.poll(0)
left = p.flush(60)
if left or errors:
    raise SystemExit(f"FAILED: {left} undelivered, errors: {errors[:5]}")

kp = KafkaProducer(bootstrap_servers=bootstrap)
futures = [kp.send(topic + "-kp", value=f"k{i}".encode(), partition=0) for i in range(1000)]
kp.flush()
offsets = [f.get(timeout=10).offset for f in futures]
if offsets != list(range(1000)):
    raise SystemExit(f"FAILED: kafka-python offsets {offsets[:5]}...")
print(f"produced {n} idempotently")
