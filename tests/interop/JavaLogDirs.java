// Interop with the Java AdminClient's describeLogDirs and describeReplicaLogDirs (KIP-113),
// run as a single source file:
// java -cp 'target/java-client/*' tests/interop/JavaLogDirs.java HOST:PORT TOPIC
//
// Prints what the broker answered, one line each, for the Rust test to compare with the
// segment files:
//     dir PATH TOTAL_BYTES USABLE_BYTES
//     all TOPIC PARTITION SIZE
// and checks the replica view of partitions 0-2 (in that dir, no lag) and 7 (absent).

import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeReplicaLogDirsResult.ReplicaLogDirInfo;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionReplica;

public class JavaLogDirs {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        String topic = args[1];
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            List<Node> nodes = List.copyOf(admin.describeCluster().nodes().get());
            check(nodes.size() == 1, "one broker: " + nodes);
            int broker = nodes.get(0).id();
            Map<Integer, Map<String, LogDirDescription>> all =
                admin.describeLogDirs(List.of(broker)).allDescriptions().get();
            Map<String, LogDirDescription> dirs = all.get(broker);
            check(dirs != null && dirs.size() == 1, "one log dir: " + all);
            String path = dirs.keySet().iterator().next();
            LogDirDescription dir = dirs.get(path);
            check(dir.error() == null, "log dir error " + dir.error());
            long total = dir.totalBytes().orElse(-1);
            long usable = dir.usableBytes().orElse(-1);
            check(0 < usable && usable <= total, "v4 disk space " + total + " " + usable);
            System.out.println("dir " + path + " " + total + " " + usable);
            for (Map.Entry<TopicPartition, ReplicaInfo> e : dir.replicaInfos().entrySet()) {
                ReplicaInfo r = e.getValue();
                check(r.offsetLag() == 0 && !r.isFuture(), e.getKey() + ": " + r);
                System.out.println("all " + e.getKey().topic() + " " + e.getKey().partition()
                    + " " + r.size());
            }

            List<TopicPartitionReplica> replicas = List.of(
                new TopicPartitionReplica(topic, 0, broker),
                new TopicPartitionReplica(topic, 1, broker),
                new TopicPartitionReplica(topic, 2, broker),
                new TopicPartitionReplica(topic, 7, broker));
            Map<TopicPartitionReplica, ReplicaLogDirInfo> placed =
                admin.describeReplicaLogDirs(replicas).all().get();
            for (TopicPartitionReplica r : replicas) {
                ReplicaLogDirInfo info = placed.get(r);
                if (r.partition() == 7) {
                    check(info == null || info.getCurrentReplicaLogDir() == null,
                        "partition 7 does not exist: " + info);
                } else {
                    check(info != null && path.equals(info.getCurrentReplicaLogDir()),
                        r + " in " + path + ": " + info);
                    check(info.getCurrentReplicaOffsetLag() == 0, r + " lag: " + info);
                    check(info.getFutureReplicaLogDir() == null, r + " future: " + info);
                }
            }
        }
        System.out.println("java log dirs OK");
    }
}
