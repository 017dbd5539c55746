// Transactions with Apache Kafka's own Java client (kafka-clients 4.3), run as a single
// source file: java -cp 'target/java-client/*' tests/interop/JavaTransactions.java HOST:PORT
//
// A transactional producer commits a transaction over three partitions and aborts the
// next; a read_committed consumer sees exactly the committed records (and its end offset
// is the last stable offset) while a read_uncommitted one sees all; a zombie is fenced by
// a second instance with the same transactional.id (ProducerFencedException on the old
// one) and its open transaction is aborted; sendOffsetsToTransaction with the group's
// metadata commits offsets only when the transaction commits.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaTransactions {
    static final String TOPIC = "java-txn";
    static String bootstrap;

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
    }

    /** Whether `e` is, or was caused by, the fencing of a producer's epoch. */
    static boolean fenced(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ProducerFencedException || t instanceof InvalidProducerEpochException) {
                return true;
            }
        }
        return false;
    }

    static KafkaProducer<String, String> producer(String txnId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", txnId);
        p.put("linger.ms", "5");
        p.put("max.block.ms", "30000");
        KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
        producer.initTransactions();
        return producer;
    }

    static KafkaConsumer<String, String> consumer(String isolation, String group) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("isolation.level", isolation);
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        if (group != null) {
            p.put("group.id", group);
        }
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    /** Everything of TOPIC's three partitions up to the end `isolation` sees now. */
    static List<String> read(String isolation) {
        try (KafkaConsumer<String, String> c = consumer(isolation, null)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < 3; p++) {
                tps.add(new TopicPartition(TOPIC, p));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = c.endOffsets(tps);
            List<String> out = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= c.position(tp) >= ends.get(tp);
                }
                if (done) {
                    return out;
                }
                check(System.currentTimeMillis() < deadline, isolation + " read stuck before " + ends);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    out.add(r.value());
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 3, (short) 1), new NewTopic(TOPIC + "-in", 1, (short) 1)))
                    .all().get();
        }

        // Commit, then abort.
        List<String> committed = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer("java-txn")) {
            p.beginTransaction();
            for (int i = 0; i < 90; i++) {
                p.send(new ProducerRecord<>(TOPIC, i % 3, null, "commit-" + i));
                committed.add("commit-" + i);
            }
            p.commitTransaction();
            p.beginTransaction();
            for (int i = 0; i < 30; i++) {
                p.send(new ProducerRecord<>(TOPIC, i % 3, null, "abort-" + i));
            }
            p.flush();
            p.abortTransaction();
        }
        List<String> got = read("read_committed");
        Collections.sort(got);
        Collections.sort(committed);
        check(got.equals(committed), "read_committed: " + got.size() + " records, want " + committed.size());
        check(read("read_uncommitted").size() == 120, "read_uncommitted sees every record");

        // A zombie fenced by a second instance with the same transactional.id.
        KafkaProducer<String, String> zombie = producer("java-zombie");
        zombie.beginTransaction();
        zombie.send(new ProducerRecord<>(TOPIC, 0, null, "zombie")).get();
        try (KafkaProducer<String, String> successor = producer("java-zombie")) {
            try {
                zombie.send(new ProducerRecord<>(TOPIC, 1, null, "zombie-2")).get();
                zombie.commitTransaction();
                check(false, "the zombie committed");
            } catch (Exception e) {
                check(fenced(e), "the zombie failed with " + e + " rather than being fenced");
            }
            successor.beginTransaction();
            successor.send(new ProducerRecord<>(TOPIC, 2, null, "successor"));
            successor.commitTransaction();
        }
        zombie.close(Duration.ZERO);
        List<String> visible = read("read_committed");
        check(!visible.contains("zombie") && !visible.contains("zombie-2"), "the zombie's records were aborted");
        check(visible.contains("successor"), "the successor committed");

        // Offsets in a transaction: committed only with it.
        String in = TOPIC + "-in";
        try (KafkaProducer<String, String> plain = new KafkaProducer<>(
                Map.of("bootstrap.servers", bootstrap), new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 5; i++) {
                plain.send(new ProducerRecord<>(in, 0, null, "in-" + i)).get();
            }
        }
        String group = "java-txn-group-" + UUID.randomUUID();
        try (KafkaConsumer<String, String> c = consumer("read_committed", group);
                KafkaProducer<String, String> p = producer("java-txn-offsets")) {
            c.subscribe(List.of(in));
            int seen = 0;
            long deadline = System.currentTimeMillis() + 30_000;
            while (seen < 5 && System.currentTimeMillis() < deadline) {
                seen += c.poll(Duration.ofMillis(200)).count();
            }
            check(seen == 5, "the group read the input");
            TopicPartition tp = new TopicPartition(in, 0);
            Map<TopicPartition, OffsetAndMetadata> offsets = Map.of(tp, new OffsetAndMetadata(5));
            p.beginTransaction();
            p.sendOffsetsToTransaction(offsets, c.groupMetadata());
            p.abortTransaction();
            check(c.committed(java.util.Set.of(tp)).get(tp) == null, "aborted offsets are not committed");
            p.beginTransaction();
            p.send(new ProducerRecord<>(TOPIC, 0, null, "with-offsets"));
            p.sendOffsetsToTransaction(offsets, c.groupMetadata());
            p.commitTransaction();
            OffsetAndMetadata after = c.committed(java.util.Set.of(tp)).get(tp);
            check(after != null && after.offset() == 5, "offsets committed with the transaction: " + after);
        }
        check(read("read_committed").contains("with-offsets"), "the transaction's record is visible");
        System.out.println("java transactions OK");
    }
}
