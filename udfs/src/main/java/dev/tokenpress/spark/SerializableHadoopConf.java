package dev.tokenpress.spark;

import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * A Hadoop {@link Configuration} that can travel to executors (it is Writable, not Serializable).
 *
 * <p>Serialised as its raw properties, each key and value as length-prefixed UTF-8, and rebuilt on
 * the other side into a {@code new Configuration(false)} holding exactly those properties (no
 * default resources are loaded there, as with {@link Configuration#readFields}). Not through {@link
 * Configuration#write}: that gzips every key and value separately, which made broadcasting a
 * default configuration (~1,000 properties) cost about 20 ms of driver time per job.
 */
public final class SerializableHadoopConf implements Serializable {
  private static final long serialVersionUID = 2L;
  private transient Configuration conf;

  public SerializableHadoopConf(Configuration conf) {
    this.conf = conf;
  }

  public Configuration get() {
    return conf;
  }

  private void writeObject(ObjectOutputStream out) throws IOException {
    out.defaultWriteObject();
    List<Map.Entry<String, String>> entries = new ArrayList<>();
    for (Map.Entry<String, String> e : conf) {
      entries.add(e);
    }
    out.writeInt(entries.size());
    for (Map.Entry<String, String> e : entries) {
      writeString(out, e.getKey());
      writeString(out, e.getValue());
    }
  }

  private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
    in.defaultReadObject();
    int n = in.readInt();
    if (n < 0) {
      throw new java.io.InvalidObjectException("negative property count " + n);
    }
    Configuration c = new Configuration(false);
    for (int i = 0; i < n; i++) {
      String key = readString(in);
      c.set(key, readString(in));
    }
    conf = c;
  }

  private static void writeString(ObjectOutputStream out, String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    out.writeInt(b.length);
    out.write(b);
  }

  private static String readString(ObjectInputStream in) throws IOException {
    int len = in.readInt();
    if (len < 0) {
      throw new java.io.InvalidObjectException("negative string length " + len);
    }
    byte[] b = new byte[len];
    in.readFully(b);
    return new String(b, StandardCharsets.UTF_8);
  }
}
