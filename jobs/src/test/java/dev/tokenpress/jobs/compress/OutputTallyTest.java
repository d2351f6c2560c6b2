package dev.tokenpress.jobs.compress;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenpress.spark.OutputSchemas;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.expressions.GenericRowWithSchema;
import org.junit.jupiter.api.Test;

class OutputTallyTest {
  private static Row row(String status, String errorClass, Integer kvChunks) {
    Object[] v = new Object[OutputSchemas.OUTPUTS.size()];
    v[OutputSchemas.OUTPUTS.fieldIndex("status")] = status;
    if (errorClass != null) {
      Object[] e = new Object[OutputSchemas.ERROR.size()];
      e[0] = errorClass;
      v[OutputSchemas.OUTPUTS.fieldIndex("error")] =
          new GenericRowWithSchema(e, OutputSchemas.ERROR);
    }
    v[OutputSchemas.OUTPUTS.fieldIndex("kv_chunks")] = kvChunks;
    return new GenericRowWithSchema(v, OutputSchemas.OUTPUTS);
  }

  @Test
  void countsOkErrorsClassesAndKvRowsAndMergesPartitions() {
    OutputTally a = new OutputTally();
    assertThat(a.isZero()).isTrue();
    a.add(row("ok", null, 4));
    a.add(row("ok", null, null));
    a.add(row("error", "java.io.EOFException", null));
    OutputTally b = a.copy();
    b.reset();
    assertThat(b.isZero()).isTrue();
    b.add(row("ok", null, 3));
    b.add(row("error", "java.io.EOFException", null));
    b.add(row("error", "dev.tokenpress.runtime.media.ImageDecodeException", null));

    OutputTally total = a.copy();
    total.merge(b);

    assertThat(total.value().ok()).isEqualTo(3);
    assertThat(total.value().errors()).isEqualTo(3);
    assertThat(total.value().kvRows()).isEqualTo(7);
    assertThat(total.value().errorClasses())
        .isEqualTo(
            Map.of(
                "java.io.EOFException",
                2L,
                "dev.tokenpress.runtime.media.ImageDecodeException",
                1L));
    // merging did not change the inputs
    assertThat(a.value().ok()).isEqualTo(2);
    assertThat(b.value().errors()).isEqualTo(2);
  }
}
