// Interop with Apache Kafka's own Java client (kafka-clients 4.3), run as a single source
// file: java -cp 'target/java-client/*' tests/interop/JavaInterop.java HOST:PORT
//
// Admin: create (and a validate-only create), describe topics, configs and the cluster,
// alter a config, list offsets, delete records, add partitions, list, describe and delete
// groups, delete topics. Producer: the Java defaults (idempotent, acks=all) with every
// codec, keys, values, headers and explicit timestamps. Consumer: a group reads everything
// back and checks each record at its offset, commits; a second member of the group resumes
// after the commit; offsetsForTimes; a long poll woken by a record produced 200 ms later;
// a group of two members that split a topic, then one leaves.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BiFunction;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaInterop {
    static final String TOPIC = "java-interop";
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final int PER_CODEC = 300;
    static final long BASE_TS = 1_700_000_000_000L;

    record Expected(String key, String value, String codec, long timestamp) {}

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static Properties props(String bootstrap, Object... kv) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        for (int i = 0; i < kv.length; i += 2) {
            p.put(kv[i], kv[i + 1]);
        }
        return p;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group) {
        return new KafkaConsumer<>(props(bootstrap,
                "group.id", group,
                "auto.offset.reset", "earliest",
                "enable.auto.commit", "false",
                "key.deserializer", StringDeserializer.class.getName(),
                "value.deserializer", StringDeserializer.class.getName()));
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        admin(bootstrap);
        Map<TopicPartition, Map<Long, Expected>> expected = produce(bootstrap);
        consumeAndCommit(bootstrap, expected);
        resumeAfterCommit(bootstrap, expected);
        offsetsForTimes(bootstrap, expected);
        longPoll(bootstrap);
        groupOfTwo(bootstrap);
        adminOnData(bootstrap, expected);
        try (Admin admin = Admin.create(props(bootstrap))) {
            admin.deleteTopics(List.of(TOPIC, "java-long-poll", "java-group-of-two")).all().get();
            try {
                admin.describeTopics(List.of(TOPIC)).allTopicNames().get();
                throw new AssertionError("a deleted topic is still described");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof UnknownTopicOrPartitionException, "deleted: " + e);
            }
        }
        System.out.println("java interop OK");
    }

    static void admin(String bootstrap) throws Exception {
        try (Admin admin = Admin.create(props(bootstrap))) {
            var cluster = admin.describeCluster();
            check(cluster.nodes().get().size() == 1, "one node");
            check(cluster.controller().get() != null, "a controller");

            // validate-only creates nothing; a bad name is refused with its own error
            admin.createTopics(List.of(new NewTopic("java-validate-only", 1, (short) 1)),
                    new CreateTopicsOptions().validateOnly(true)).all().get();
            check(!admin.listTopics().names().get().contains("java-validate-only"),
                    "validate-only created a topic");
            try {
                admin.createTopics(List.of(new NewTopic("bad/name", 1, (short) 1))).all().get();
                throw new AssertionError("bad/name was created");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof InvalidTopicException, "bad name: " + e);
            }

            admin.createTopics(List.of(new NewTopic(TOPIC, 3, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all().get();
            TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC);
            check(d.partitions().size() == 3, "3 partitions: " + d);
            check(d.topicId() != null && !d.topicId().toString().isEmpty(), "topic id");

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC);
            ConfigEntry retention = admin.describeConfigs(List.of(res)).all().get().get(res)
                    .get("retention.ms");
            check(retention != null && retention.value().equals("3600000"), "retention.ms: " + retention);
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET))))
                    .all().get();
            ConfigEntry max = admin.describeConfigs(List.of(res)).all().get().get(res)
                    .get("max.message.bytes");
            check(max.value().equals("2000000"), "altered max.message.bytes: " + max);
        }
    }

    static Map<TopicPartition, Map<Long, Expected>> produce(String bootstrap) throws Exception {
        Map<TopicPartition, Map<Long, Expected>> expected = new HashMap<>();
        long ts = BASE_TS;
        for (String codec : CODECS) {
            // The Java defaults stay: enable.idempotence=true, acks=all.
            try (KafkaProducer<String, String> p = new KafkaProducer<>(props(bootstrap,
                    "compression.type", codec,
                    "linger.ms", "5",
                    "key.serializer", StringSerializer.class.getName(),
                    "value.serializer", StringSerializer.class.getName()))) {
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                List<Expected> records = new ArrayList<>();
                for (int i = 0; i < PER_CODEC; i++) {
                    Expected e = new Expected(codec + "-key-" + i,
                            codec + "-value-" + i + "-" + "x".repeat(i % 50), codec, ts++);
                    ProducerRecord<String, String> r =
                            new ProducerRecord<>(TOPIC, i % 3, e.timestamp(), e.key(), e.value());
                    r.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    r.headers().add("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    sent.add(p.send(r));
                    records.add(e);
                }
                for (int i = 0; i < sent.size(); i++) {
                    RecordMetadata m = sent.get(i).get();
                    check(m.partition() == i % 3, "partition");
                    Expected prev = expected
                            .computeIfAbsent(new TopicPartition(TOPIC, m.partition()), k -> new HashMap<>())
                            .put(m.offset(), records.get(i));
                    check(prev == null, "offset " + m.offset() + " acknowledged twice");
                }
            }
        }
        // offsets are dense from 0 in each partition
        for (var e : expected.entrySet()) {
            for (long o = 0; o < e.getValue().size(); o++) {
                check(e.getValue().containsKey(o), e.getKey() + " has no record at " + o);
            }
        }
        return expected;
    }

    static void consumeAndCommit(String bootstrap, Map<TopicPartition, Map<Long, Expected>> expected) {
        int total = expected.values().stream().mapToInt(Map::size).sum();
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "java-group")) {
            c.subscribe(List.of(TOPIC));
            int seen = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen < total) {
                check(System.currentTimeMillis() < deadline, "consumed only " + seen + " of " + total);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    Expected e = expected.get(new TopicPartition(r.topic(), r.partition())).get(r.offset());
                    check(e != null, "unexpected record at " + r.partition() + "/" + r.offset());
                    check(r.key().equals(e.key()) && r.value().equals(e.value()), "record " + r);
                    check(r.timestamp() == e.timestamp(), "timestamp " + r);
                    check(r.timestampType() == TimestampType.CREATE_TIME, "timestamp type " + r);
                    Header codec = r.headers().lastHeader("codec");
                    check(codec != null && new String(codec.value(), StandardCharsets.UTF_8).equals(e.codec()),
                            "codec header " + r);
                    check(r.headers().toArray().length == 2, "two headers " + r);
                    seen++;
                }
            }
            c.commitSync();
            for (TopicPartition tp : expected.keySet()) {
                var committed = c.committed(Set.of(tp)).get(tp);
                check(committed != null && committed.offset() == expected.get(tp).size(),
                        "committed " + tp + ": " + committed);
            }
        }
    }

    static void resumeAfterCommit(String bootstrap, Map<TopicPartition, Map<Long, Expected>> expected)
            throws Exception {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props(bootstrap,
                "key.serializer", StringSerializer.class.getName(),
                "value.serializer", StringSerializer.class.getName()))) {
            for (int part = 0; part < 3; part++) {
                p.send(new ProducerRecord<>(TOPIC, part, "after", "after-commit-" + part)).get();
            }
        }
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "java-group")) {
            c.subscribe(List.of(TOPIC));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (got.size() < 3 && System.currentTimeMillis() < deadline) {
                c.poll(Duration.ofMillis(500)).forEach(got::add);
            }
            check(got.size() == 3, "after the commit, read " + got.size() + " records, not 3: " + got);
            for (ConsumerRecord<String, String> r : got) {
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                check(r.offset() == expected.get(tp).size(), "resumed at " + r);
                check(r.value().equals("after-commit-" + r.partition()), "resumed value " + r);
            }
        }
    }

    static void offsetsForTimes(String bootstrap, Map<TopicPartition, Map<Long, Expected>> expected) {
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "java-times")) {
            TopicPartition tp = new TopicPartition(TOPIC, 1);
            Map<Long, Expected> log = expected.get(tp);
            // every record's own timestamp finds its offset (timestamps rise with offsets here)
            for (long offset = 0; offset < log.size(); offset += 37) {
                long ts = log.get(offset).timestamp();
                OffsetAndTimestamp found = c.offsetsForTimes(Map.of(tp, ts)).get(tp);
                check(found != null && found.offset() == offset && found.timestamp() == ts,
                        "offsetsForTimes(" + ts + ") = " + found + ", expected " + offset);
                // one millisecond later finds the next record
                if (offset + 1 < log.size()) {
                    found = c.offsetsForTimes(Map.of(tp, ts + 1)).get(tp);
                    check(found != null && found.offset() > offset, "after " + ts + ": " + found);
                }
            }
            check(c.offsetsForTimes(Map.of(tp, Long.MAX_VALUE / 2)).get(tp) == null, "past the end");
            check(c.beginningOffsets(List.of(tp)).get(tp) == 0, "log start offset");
            check(c.endOffsets(List.of(tp)).get(tp) == log.size() + 1, "log end offset");
        }
    }

    /**
     * The admin calls that act on a topic's data and on groups: ListOffsets (earliest,
     * latest, max timestamp, by time), DeleteRecords, CreatePartitions, and the group
     * listing, description, offsets and deletion.
     */
    static void adminOnData(String bootstrap, Map<TopicPartition, Map<Long, Expected>> expected)
            throws Exception {
        TopicPartition p0 = new TopicPartition(TOPIC, 0);
        TopicPartition p1 = new TopicPartition(TOPIC, 1);
        Map<Long, Expected> log1 = expected.get(p1);
        try (Admin admin = Admin.create(props(bootstrap))) {
            // partition 1 holds its produced records plus the one sent after the commit
            long end1 = log1.size() + 1;
            check(admin.listOffsets(Map.of(p1, OffsetSpec.earliest())).partitionResult(p1).get()
                    .offset() == 0, "earliest");
            check(admin.listOffsets(Map.of(p1, OffsetSpec.latest())).partitionResult(p1).get()
                    .offset() == end1, "latest");
            long maxTs = log1.values().stream().mapToLong(Expected::timestamp).max().getAsLong();
            long maxTsOffset = log1.entrySet().stream()
                    .filter(e -> e.getValue().timestamp() == maxTs).findFirst().get().getKey();
            // the record sent after the commit carries the wall clock, later than BASE_TS
            var max = admin.listOffsets(Map.of(p1, OffsetSpec.maxTimestamp())).partitionResult(p1).get();
            check(max.offset() == log1.size() && max.timestamp() > maxTs,
                    "max timestamp: " + max + " (the produced records end at " + maxTsOffset + ")");
            long ts = log1.get(40L).timestamp();
            check(admin.listOffsets(Map.of(p1, OffsetSpec.forTimestamp(ts))).partitionResult(p1).get()
                    .offset() == 40, "by timestamp");

            var deleted = admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(10)))
                    .lowWatermarks().get(p0).get();
            check(deleted.lowWatermark() == 10, "low watermark " + deleted.lowWatermark());
            check(admin.listOffsets(Map.of(p0, OffsetSpec.earliest())).partitionResult(p0).get()
                    .offset() == 10, "log start offset after DeleteRecords");
            try (KafkaConsumer<String, String> c = consumer(bootstrap, "java-after-delete")) {
                c.assign(List.of(p0));
                c.seekToBeginning(List.of(p0));
                ConsumerRecord<String, String> first = null;
                long deadline = System.currentTimeMillis() + 10_000;
                while (first == null && System.currentTimeMillis() < deadline) {
                    var records = c.poll(Duration.ofMillis(200));
                    if (!records.isEmpty()) {
                        first = records.iterator().next();
                    }
                }
                check(first != null && first.offset() == 10
                        && first.value().equals(expected.get(p0).get(10L).value()),
                        "first record after DeleteRecords: " + first);
            }

            admin.createPartitions(Map.of(TOPIC, NewPartitions.increaseTo(4))).all().get();
            check(admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC)
                    .partitions().size() == 4, "4 partitions after CreatePartitions");

            var groups = admin.listGroups().all().get().stream()
                    .map(g -> g.groupId()).toList();
            check(groups.contains("java-group"), "listed groups " + groups);
            var group = admin.describeConsumerGroups(List.of("java-group")).all().get().get("java-group");
            check(group.members().isEmpty() && group.groupState() == GroupState.EMPTY,
                    "an empty group: " + group);
            var offsets = admin.listConsumerGroupOffsets("java-group").partitionsToOffsetAndMetadata().get();
            for (var e : expected.entrySet()) {
                // as committed by the first member (the second one read on without committing)
                long want = e.getValue().size();
                check(offsets.get(e.getKey()) != null && offsets.get(e.getKey()).offset() == want,
                        "group offset " + e.getKey() + ": " + offsets.get(e.getKey()) + ", expected " + want);
            }
            admin.deleteConsumerGroups(List.of("java-group")).all().get();
            groups = admin.listGroups().all().get().stream().map(g -> g.groupId()).toList();
            check(!groups.contains("java-group"), "deleted group still listed: " + groups);
        }
    }

    /**
     * Two members share a 4-partition topic, each polling on its own thread; then one
     * leaves and the other takes every partition. Java's default assignors
     * (range, cooperative-sticky) must be negotiated by the broker's group coordinator.
     */
    static void groupOfTwo(String bootstrap) throws Exception {
        String topic = "java-group-of-two";
        int n = 2000;
        try (Admin admin = Admin.create(props(bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get();
        }
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props(bootstrap,
                "key.serializer", StringSerializer.class.getName(),
                "value.serializer", StringSerializer.class.getName()))) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, i % 4, null, "v" + i));
            }
            p.flush();
        }
        Set<String> seen = ConcurrentHashMap.newKeySet();
        Map<String, Set<TopicPartition>> assigned = new ConcurrentHashMap<>();
        AtomicBoolean stopA = new AtomicBoolean();
        AtomicBoolean stopB = new AtomicBoolean();
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        BiFunction<String, AtomicBoolean, Thread> member =
                (name, stop) -> new Thread(() -> {
                    try (KafkaConsumer<String, String> c = consumer(bootstrap, "java-two")) {
                        c.subscribe(List.of(topic));
                        while (!stop.get()) {
                            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                                seen.add(r.value());
                            }
                            assigned.put(name, Set.copyOf(c.assignment()));
                            c.commitSync();
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                });
        Thread a = member.apply("a", stopA);
        Thread b = member.apply("b", stopB);
        a.start();
        b.start();
        long deadline = System.currentTimeMillis() + 60_000;
        while (!(seen.size() == n && assigned.getOrDefault("a", Set.of()).size() == 2
                && assigned.getOrDefault("b", Set.of()).size() == 2)) {
            check(failures.isEmpty(), "member failed: " + failures);
            check(System.currentTimeMillis() < deadline,
                    "two members: seen " + seen.size() + " of " + n + ", assignments " + assigned);
            Thread.sleep(50);
        }
        stopB.set(true);
        b.join();
        while (assigned.get("a").size() != 4) {
            check(failures.isEmpty(), "member failed: " + failures);
            check(System.currentTimeMillis() < deadline, "after b left, a has " + assigned.get("a"));
            Thread.sleep(50);
        }
        stopA.set(true);
        a.join();
        check(failures.isEmpty(), "member failed: " + failures);
    }

    static void longPoll(String bootstrap) throws Exception {
        String topic = "java-long-poll";
        try (Admin admin = Admin.create(props(bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        }
        Properties cp = props(bootstrap,
                "group.id", "java-long-poll",
                // long enough that only the broker waking the fetch can deliver in time
                "fetch.max.wait.ms", "5000",
                "key.deserializer", StringDeserializer.class.getName(),
                "value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp);
             KafkaProducer<String, String> p = new KafkaProducer<>(props(bootstrap,
                     "key.serializer", StringSerializer.class.getName(),
                     "value.serializer", StringSerializer.class.getName()))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToEnd(List.of(tp));
            c.position(tp);
            c.poll(Duration.ofMillis(200)); // settle the fetch position
            Thread sender = new Thread(() -> {
                try {
                    Thread.sleep(200);
                    p.send(new ProducerRecord<>(topic, 0, "k", "late")).get();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            long start = System.nanoTime();
            sender.start();
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            while (got.isEmpty() && System.nanoTime() - start < 10_000_000_000L) {
                c.poll(Duration.ofMillis(100)).forEach(got::add);
            }
            long ms = (System.nanoTime() - start) / 1_000_000;
            sender.join();
            check(got.size() == 1 && got.get(0).value().equals("late"), "long poll got " + got);
            check(ms < 1200, "a record produced 200 ms later arrived after " + ms + " ms");
        }
    }
}
