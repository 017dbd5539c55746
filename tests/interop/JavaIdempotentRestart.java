// Kafka's Java idempotent producer across a broker crash, run as a single source file by
// the e2e test `interop::java_idempotent_producer_survives_a_broker_crash`:
//
//   java -cp 'target/java-client/*' tests/interop/JavaIdempotentRestart.java HOST:PORT
//
// It sends numbered records to one partition, five requests in flight, and prints
// "producing" once the first is acknowledged. While records keep coming, the test stops the
// broker (SIGSTOP) for longer than the request timeout, resumes it, then kills it (SIGKILL)
// and starts it again on the same port; a line on stdin ends the run. Requests timed out
// or cut off are sent again with their original sequence numbers, so the broker must
// recognise the ones it had already written. At the end every record must be
// acknowledged and the partition must hold each one exactly once, in order: the value at
// offset n is n.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaIdempotentRestart {
    static final String TOPIC = "java-idempotent";

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get();
        }

        AtomicBoolean stop = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try {
                new BufferedReader(new InputStreamReader(System.in)).readLine();
            } catch (Exception e) {
                // end of input stops the run just the same
            }
            stop.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();

        Properties pp = new Properties();
        pp.putAll(common);
        pp.put("enable.idempotence", "true");
        pp.put("acks", "all");
        pp.put("max.in.flight.requests.per.connection", "5");
        pp.put("linger.ms", "1");
        pp.put("batch.size", "4096");
        pp.put("request.timeout.ms", "1000");
        pp.put("delivery.timeout.ms", "120000");
        pp.put("reconnect.backoff.max.ms", "200");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        AtomicLong acked = new AtomicLong();
        AtomicReference<Exception> failure = new AtomicReference<>();
        long sent = 0;
        double retried = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            boolean announced = false;
            while (!stop.get()) {
                producer.send(new ProducerRecord<>(TOPIC, 0, null, Long.toString(sent)), (m, e) -> {
                    if (e != null) {
                        failure.compareAndSet(null, e);
                    } else {
                        acked.incrementAndGet();
                    }
                });
                sent++;
                if (!announced && acked.get() > 0) {
                    System.out.println("producing");
                    System.out.flush();
                    announced = true;
                }
                if (sent % 50 == 0) {
                    Thread.sleep(1);
                }
            }
            producer.flush();
            for (var m : producer.metrics().entrySet()) {
                if (m.getKey().group().equals("producer-metrics")
                        && m.getKey().name().equals("record-retry-total")) {
                    retried = (double) m.getValue().metricValue();
                }
            }
        }
        if (failure.get() != null) {
            throw new AssertionError("a send failed", failure.get());
        }
        if (acked.get() != sent) {
            throw new AssertionError(acked.get() + " of " + sent + " records acknowledged");
        }

        Properties cp = new Properties();
        cp.putAll(common);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            if (end != sent) {
                throw new AssertionError("the log ends at " + end + " after " + sent + " records were sent once each");
            }
            long next = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            while (next < sent) {
                if (System.currentTimeMillis() > deadline) {
                    throw new AssertionError("read " + next + " of " + sent + " records");
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    if (r.offset() != next || !r.value().equals(Long.toString(next))) {
                        throw new AssertionError("at offset " + r.offset() + " (expected " + next
                                + "): value " + r.value());
                    }
                    next++;
                }
            }
        }
        System.out.println("exactly once: " + sent + " records across a broker crash, "
                + (long) retried + " of them sent again");
    }
}
