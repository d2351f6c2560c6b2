package dev.tokenpress.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

class SerializableHadoopConfTest {
  private static Map<String, String> props(Configuration c) {
    Map<String, String> m = new TreeMap<>();
    for (Map.Entry<String, String> e : c) {
      m.put(e.getKey(), e.getValue());
    }
    return m;
  }

  private static Configuration roundTrip(Configuration c) throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(new SerializableHadoopConf(c));
    }
    try (ObjectInputStream in =
        new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      return ((SerializableHadoopConf) in.readObject()).get();
    }
  }

  @Test
  void defaultConfigurationTravelsWithEveryPropertyAndRawValue() throws Exception {
    Configuration c = new Configuration(); // core-default.xml: ~1,000 properties, many with ${...}
    c.set("tokenpress.unicode", "κλειδί → 値");
    c.set("tokenpress.empty", "");
    c.set("tokenpress.long", "x".repeat(100_000)); // longer than writeUTF's 64 KB limit
    c.set("tokenpress.ref", "${hadoop.tmp.dir}/sub");
    Map<String, String> before = props(c);
    Configuration back = roundTrip(c);
    assertEquals(before, props(back));
    assertEquals(c.get("tokenpress.ref"), back.get("tokenpress.ref")); // expanded alike on read
    assertEquals(c.get("fs.defaultFS"), back.get("fs.defaultFS"));
  }

  @Test
  void emptyConfigurationStaysEmpty() throws Exception {
    Configuration back = roundTrip(new Configuration(false));
    assertEquals(Map.of(), props(back));
  }
}
