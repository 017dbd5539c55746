#!/usr/bin/env python3
"""Capture the request frames real Kafka clients send, as golden bytes for sluice-protocol.

A small fake broker listens on 127.0.0.1 and answers just enough for a client to go on to
its next request: ApiVersions with Sluice's advertised table (so clients pick the versions
they would pick against Sluice), Metadata naming itself as the only broker, and canned
answers for InitProducerId, Produce, FindCoordinator, the group protocol, OffsetFetch,
ListOffsets and Fetch. Responses are built with kafka-python 3.x's schema-driven protocol
classes. The first frame of every (client, API, version) is written, without its size
prefix, to

    protocol/tests/fixtures/<api>_v<version>_<client>.bin

and copied into protocol/fuzz/corpus/{header,request}/ as fuzz seeds, with seeds derived
from them for the frame target (size-prefixed frames) and the batch target (the record
sets of captured Produce requests, plus the record_batch_*.bin fixtures).

Clients driven: kafka-python (producer, group consumer), kafka-python pinned to Kafka
0.10.0, 0.8.2 and 0.8.1 (the old versions KIP-896 removed from Kafka 4.0), confluent-kafka /
librdkafka (producer, group consumer) and kcat (its own librdkafka: metadata, produce,
consume). Frames in versions Sluice does not advertise are not kept.

    python3 tests/interop/capture.py            # writes the fixtures
    python3 tests/interop/capture.py --list     # only prints what was captured
    python3 tests/interop/capture.py --seeds    # only re-derives fuzz seeds from fixtures
    python3 tests/interop/capture.py --only kafka-python-old   # one client's fixtures

The fake broker is no broker: it stores nothing and serves no records. Requests the
real broker would answer differently later in a client's life (retries, Fetch with
records) still need a capture against sluiced.
"""

import argparse
import io
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "protocol" / "tests" / "fixtures"
CORPUS = ROOT / "protocol" / "fuzz" / "corpus"
TOPIC = "golden"
TOPIC_ID = uuid.UUID("5a1c0e00-0000-4000-8000-000000000001")
GROUP = "golden-group"

# Sluice's advertised ranges: a copy of protocol/src/api_key.rs SUPPORTED_APIS.
ADVERTISED = [
    (0, 0, 11), (1, 4, 17), (2, 0, 9), (3, 0, 12), (8, 0, 9), (9, 0, 9), (10, 0, 6),
    (11, 0, 9), (12, 0, 4), (13, 0, 5), (14, 0, 5), (15, 0, 5), (16, 0, 5), (17, 0, 1),
    (18, 0, 4), (19, 0, 7), (20, 0, 6), (21, 0, 2), (22, 0, 5), (32, 0, 4), (33, 0, 2),
    (35, 0, 4), (36, 0, 2), (37, 0, 3), (42, 0, 2), (44, 0, 1), (47, 0, 0), (60, 0, 1),
]

API_NAMES = {
    0: "produce", 1: "fetch", 2: "list_offsets", 3: "metadata", 8: "offset_commit",
    9: "offset_fetch", 10: "find_coordinator", 11: "join_group", 12: "heartbeat",
    13: "leave_group", 14: "sync_group", 18: "api_versions", 22: "init_producer_id",
}

REQUESTS = {
    cls.API_KEY: cls
    for cls in (
        ProduceRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
        OffsetFetchRequest, FindCoordinatorRequest, JoinGroupRequest, HeartbeatRequest,
        LeaveGroupRequest, SyncGroupRequest, ApiVersionsRequest, InitProducerIdRequest,
    )
}


def read_uvarint(buf):
    value = shift = 0
    while True:
        b = buf.read(1)[0]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value
        shift += 7


def parse_header(frame):
    """Returns (api_key, version, correlation_id, body bytes)."""
    buf = io.BytesIO(frame)
    api_key, version, correlation_id, client_len = struct.unpack(">hhih", buf.read(10))
    if client_len > 0:
        buf.read(client_len)
    cls = REQUESTS.get(api_key)
    if cls is not None and cls.flexible_version_q(version):
        for _ in range(read_uvarint(buf)):
            read_uvarint(buf)
            buf.read(read_uvarint(buf))
    return api_key, version, correlation_id, frame[buf.tell():]


class FakeBroker:
    """Answers each request with just enough for the client to continue."""

    def __init__(self, port):
        self.port = port
        self.members = {}

    def respond(self, api_key, version, request):
        handler = getattr(self, f"on_{API_NAMES.get(api_key, 'unknown')}", None)
        return handler(version, request) if handler else None

    def on_api_versions(self, version, request):
        keys = [ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                for k, lo, hi in ADVERTISED]
        if version > 4:
            return ApiVersionsResponse(version=0, error_code=35, api_keys=keys)
        return ApiVersionsResponse(version=version, api_keys=keys)

    def on_metadata(self, version, request):
        R = MetadataResponse
        T = R.MetadataResponseTopic
        P = T.MetadataResponsePartition
        names = [t.name for t in (request.topics or [])] or [TOPIC]
        topics = [T(name=name, topic_id=TOPIC_ID, partitions=[
            P(partition_index=0, leader_id=0, leader_epoch=0, replica_nodes=[0], isr_nodes=[0])])
            for name in names]
        brokers = [R.MetadataResponseBroker(node_id=0, host="127.0.0.1", port=self.port)]
        return R(version=version, brokers=brokers, cluster_id="golden-cluster",
                 controller_id=0, topics=topics)

    def on_init_producer_id(self, version, request):
        return InitProducerIdResponse(version=version, producer_id=4000, producer_epoch=0)

    def on_produce(self, version, request):
        if request.acks == 0:
            return None
        R = ProduceResponse
        T = R.TopicProduceResponse
        topics = [T(name=t.name, partition_responses=[
            T.PartitionProduceResponse(index=p.index, base_offset=0, log_start_offset=0)
            for p in t.partition_data]) for t in request.topic_data]
        return R(version=version, responses=topics)

    def on_find_coordinator(self, version, request):
        R = FindCoordinatorResponse
        if version >= 4:
            return R(version=version, coordinators=[
                R.Coordinator(key=k, node_id=0, host="127.0.0.1", port=self.port)
                for k in request.coordinator_keys])
        return R(version=version, node_id=0, host="127.0.0.1", port=self.port)

    def on_join_group(self, version, request):
        R = JoinGroupResponse
        protocol = request.protocols[0]
        if not request.member_id and version >= 4:
            # KIP-394: the first join of v4+ gets a member id and must rejoin with it.
            return R(version=version, error_code=79, member_id=f"member-{len(self.members)}")
        member = request.member_id or f"member-{len(self.members)}"
        self.members[member] = protocol.metadata
        return R(version=version, generation_id=1, protocol_type="consumer",
                 protocol_name=protocol.name, leader=member, member_id=member,
                 members=[R.JoinGroupResponseMember(member_id=member, metadata=protocol.metadata)])

    def on_sync_group(self, version, request):
        assignment = next((a.assignment for a in request.assignments
                           if a.member_id == request.member_id), b"")
        return SyncGroupResponse(version=version, protocol_type="consumer",
                                 protocol_name=request.protocol_name, assignment=assignment)

    def on_heartbeat(self, version, request):
        return HeartbeatResponse(version=version)

    def on_leave_group(self, version, request):
        R = LeaveGroupResponse
        members = [R.MemberResponse(member_id=m.member_id) for m in (request.members or [])]
        return R(version=version, members=members)

    def on_offset_fetch(self, version, request):
        R = OffsetFetchResponse
        if version >= 8:
            G = R.OffsetFetchResponseGroup
            T = G.OffsetFetchResponseTopics
            groups = [G(group_id=g.group_id, topics=[
                T(name=t.name, partitions=[
                    T.OffsetFetchResponsePartitions(partition_index=p, committed_offset=-1)
                    for p in t.partition_indexes]) for t in (g.topics or [])])
                for g in request.groups]
            return R(version=version, groups=groups)
        T = R.OffsetFetchResponseTopic
        topics = [T(name=t.name, partitions=[
            T.OffsetFetchResponsePartition(partition_index=p, committed_offset=-1)
            for p in t.partition_indexes]) for t in (request.topics or [])]
        return R(version=version, topics=topics)

    def on_offset_commit(self, version, request):
        R = OffsetCommitResponse
        T = R.OffsetCommitResponseTopic
        topics = [T(name=t.name, partitions=[
            T.OffsetCommitResponsePartition(partition_index=p.partition_index)
            for p in t.partitions]) for t in request.topics]
        return R(version=version, topics=topics)

    def on_list_offsets(self, version, request):
        R = ListOffsetsResponse
        T = R.ListOffsetsTopicResponse
        if version == 0:
            topics = [T(name=t.name, partitions=[
                T.ListOffsetsPartitionResponse(partition_index=p.partition_index,
                                               old_style_offsets=[0])
                for p in t.partitions]) for t in request.topics]
            return R(version=version, topics=topics)
        topics = [T(name=t.name, partitions=[
            T.ListOffsetsPartitionResponse(partition_index=p.partition_index, timestamp=-1,
                                           offset=0, leader_epoch=0)
            for p in t.partitions]) for t in request.topics]
        return R(version=version, topics=topics)

    def on_fetch(self, version, request):
        R = FetchResponse
        T = R.FetchableTopicResponse
        topics = [T(topic=t.topic, topic_id=t.topic_id, partitions=[
            T.PartitionData(partition_index=p.partition, high_watermark=0,
                            last_stable_offset=0, log_start_offset=0, records=b"")
            for p in t.partitions]) for t in request.topics]
        # An empty fetch answered at once would spin the client; Kafka waits max_wait_ms.
        time.sleep(min(request.max_wait_ms, 500) / 1000)
        return R(version=version, responses=topics)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.client = "unknown"
        self.frames = {}  # (client, api, version) -> first frame

    def record(self, api_key, version, frame):
        with self.lock:
            self.frames.setdefault((self.client, api_key, version), frame)


def serve(recorder, broker):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            sock = self.request
            sock.settimeout(30)
            try:
                while True:
                    size = recv_exact(sock, 4)
                    if size is None:
                        return
                    frame = recv_exact(sock, struct.unpack(">i", size)[0])
                    api_key, version, correlation_id, body = parse_header(frame)
                    recorder.record(api_key, version, frame)
                    cls = REQUESTS.get(api_key)
                    if cls is None or (api_key != 18 and version > cls.max_version):
                        return  # unknown to the fake: close, as a broker would
                    request = None if api_key == 18 and version > 4 else cls.decode(body, version=version)
                    response = broker.respond(api_key, version, request)
                    if response is None:
                        continue
                    response.with_header(correlation_id=correlation_id)
                    sock.sendall(response.encode(header=True, framed=True))
            except (OSError, ValueError, IndexError, struct.error) as e:
                print(f"  connection closed: {e!r}", file=sys.stderr)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    broker.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def kafka_python_clients(addr):
    from kafka import KafkaConsumer, KafkaProducer

    # Idempotent, as the Java client and kafka-python 3.x are by default: InitProducerId,
    # then batches with a producer id and sequence numbers.
    producer = KafkaProducer(bootstrap_servers=addr, client_id="golden-kafka-python",
                             linger_ms=0, acks="all", enable_idempotence=True)
    producer.send(TOPIC, key=b"key", value=b"value", partition=0).get(timeout=10)
    producer.close(timeout=2)

    consumer = KafkaConsumer(TOPIC, bootstrap_servers=addr, client_id="golden-kafka-python",
                             group_id=GROUP, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    deadline = time.time() + 6
    while time.time() < deadline:
        consumer.poll(timeout_ms=500)
    consumer.commit({tp: __import__("kafka").OffsetAndMetadata(0, "", -1)
                     for tp in consumer.assignment()})
    consumer.close()


def kafka_python_old_clients(addr):
    """kafka-python pinned to old brokers: the versions Kafka 4.0 removed (KIP-896)."""
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    tp = TopicPartition(TOPIC, 0)
    # 0.10.0: JoinGroup, SyncGroup and Heartbeat v0, ListOffsets v0 (its Fetch is v2,
    # message format v1, which Sluice does not advertise: that frame is not kept).
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=addr, client_id="golden-kafka-python-old",
                             group_id=GROUP, auto_offset_reset="latest",
                             enable_auto_commit=False, api_version=(0, 10, 0))
    deadline = time.time() + 4
    while time.time() < deadline:
        consumer.poll(timeout_ms=500)
    consumer.close()
    # 0.8.2 commits with OffsetCommit v1, 0.8.1 with v0 and reads with OffsetFetch v0.
    for pin in [(0, 8, 2), (0, 8, 1)]:
        consumer = KafkaConsumer(bootstrap_servers=addr, client_id="golden-kafka-python-old",
                                 group_id=GROUP, enable_auto_commit=False, api_version=pin)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(7, "old", -1)})
        consumer.committed(tp)
        consumer.close()


def librdkafka_clients(addr):
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": addr, "client.id": "golden-librdkafka",
                         "linger.ms": 0, "enable.idempotence": True})
    producer.produce(TOPIC, key=b"key", value=b"value", partition=0)
    producer.flush(10)

    consumer = Consumer({"bootstrap.servers": addr, "client.id": "golden-librdkafka",
                         "group.id": GROUP, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([TOPIC])
    deadline = time.time() + 8
    while time.time() < deadline:
        consumer.poll(0.5)
    consumer.close()


def kcat_clients(addr):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        print("  kcat not found: skipped", file=sys.stderr)
        return
    run = lambda *args, stdin=None: subprocess.run(
        [kcat, "-b", addr, "-X", "client.id=golden-kcat", *args], input=stdin,
        capture_output=True, timeout=20)
    run("-L")
    run("-P", "-t", TOPIC, "-p", "0", "-k", "key", stdin=b"value\n")
    run("-C", "-t", TOPIC, "-p", "0", "-o", "beginning", "-e")


def write_seeds():
    """Fuzz seeds for every target, from the fixtures on disk."""
    frames = sorted(FIXTURES.glob("*_v*_*.bin"))
    for target in ("header", "request", "frame", "batch"):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
    for path in frames:
        frame = path.read_bytes()
        for target in ("header", "request"):
            (CORPUS / target / path.name).write_bytes(frame)
        # frame target: max-size selector 3 (1 MiB), read size 1 + 7, then two frames.
        prefixed = struct.pack(">i", len(frame)) + frame
        (CORPUS / "frame" / path.name).write_bytes(b"\x03\x07" + prefixed * 2)
        api_key, version, _, body = parse_header(frame)
        if api_key == 0:
            request = ProduceRequest.decode(body, version=version)
            for topic in request.topic_data:
                for partition in topic.partition_data:
                    (CORPUS / "batch" / path.name).write_bytes(bytes(partition.records))
    for path in FIXTURES.glob("record_batch_*.bin"):
        shutil.copy(path, CORPUS / "batch" / path.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print, do not write")
    parser.add_argument("--seeds", action="store_true", help="only write fuzz seeds")
    parser.add_argument("--only", metavar="CLIENT", help="drive only this client")
    args = parser.parse_args()
    if args.seeds:
        write_seeds()
        return

    recorder = Recorder()
    broker = FakeBroker(0)
    server = serve(recorder, broker)
    addr = f"127.0.0.1:{broker.port}"
    for client, drive in [("kafka-python", kafka_python_clients),
                          ("kafka-python-old", kafka_python_old_clients),
                          ("librdkafka", librdkafka_clients), ("kcat", kcat_clients)]:
        if args.only and client != args.only:
            continue
        print(f"driving {client} against {addr}", file=sys.stderr)
        recorder.client = client
        try:
            drive(addr)
        except Exception as e:  # a client giving up still leaves what it sent
            print(f"  {client}: {e!r}", file=sys.stderr)
        time.sleep(0.5)
    server.shutdown()

    advertised = {k: (lo, hi) for k, lo, hi in ADVERTISED}
    for (client, api_key, version), frame in sorted(recorder.frames.items()):
        lo, hi = advertised.get(api_key, (0, -1))
        if not lo <= version <= hi:
            print(f"not kept: api {api_key} v{version} of {client} is not advertised")
            continue
        name = f"{API_NAMES.get(api_key, f'api{api_key}')}_v{version}_{client}.bin"
        print(f"{name:45} {len(frame):6} bytes")
        if not args.list:
            (FIXTURES / name).write_bytes(frame)
    if not args.list:
        write_seeds()


if __name__ == "__main__":
    main()
