package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.spark.OutputSchemas;
import java.util.Arrays;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.types.StructField;
import org.junit.jupiter.api.Test;

class BatchWriteTest {
  @Test
  void overridesAreTheEntriesTheBaseLacksOrSetsDifferently() {
    Configuration base = new Configuration(false);
    base.set("a", "1");
    base.set("b", "2");
    Configuration conf = new Configuration(base);
    conf.set("b", "3");
    conf.set("c", "4");

    Map<String, String> diff = BatchWrite.overrides(conf, base);

    assertThat(diff).containsExactlyInAnyOrderEntriesOf(Map.of("b", "3", "c", "4"));
    // Applying them to a copy of the base gives the configuration back.
    Configuration rebuilt = new Configuration(base);
    diff.forEach(rebuilt::set);
    for (Map.Entry<String, String> e : conf) {
      assertThat(rebuilt.getRaw(e.getKey())).isEqualTo(e.getValue());
    }
  }

  @Test
  void kvFilesStoreEveryKvColumnButTheBatchPartition() {
    assertThat(Arrays.stream(BatchWrite.KV_FILE_SCHEMA.fields()).map(StructField::name))
        .containsExactlyElementsOf(
            Arrays.stream(OutputSchemas.KV_CACHE.fields())
                .map(StructField::name)
                .filter(n -> !n.equals("batch_id"))
                .toList());
  }
}
