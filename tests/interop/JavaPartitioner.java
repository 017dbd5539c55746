// The Java client's choice of partition for many keys, to check sluice-client's
// partitioner against: prints one line per key, "<key in hex> <murmur2> <partition of 1..64>".
//
// Usage: java -cp 'target/java-client/*' tests/interop/JavaPartitioner.java KEYS
// Keys are deterministic: key i has i % 41 bytes from a SplittableRandom seeded with i.

import java.util.SplittableRandom;
import org.apache.kafka.common.utils.Utils;

public class JavaPartitioner {
    public static void main(String[] args) {
        int keys = Integer.parseInt(args[0]);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < keys; i++) {
            byte[] key = new byte[i % 41];
            new SplittableRandom(i).nextBytes(key);
            int partitions = 1 + i % 64;
            StringBuilder hex = new StringBuilder();
            for (byte b : key) hex.append(String.format("%02x", b));
            if (hex.length() == 0) hex.append('-');
            int hash = Utils.murmur2(key);
            out.append(hex).append(' ').append(hash).append(' ').append(partitions)
                .append(' ').append(Utils.toPositive(hash) % partitions).append('\n');
        }
        System.out.print(out);
    }
}
