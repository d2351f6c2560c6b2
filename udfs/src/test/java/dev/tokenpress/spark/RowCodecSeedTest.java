package dev.tokenpress.spark;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Timestamp;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;

/**
 * The {@code record_seed} column and a DAMRO-style {@code BRANCH} kept map in an {@code outputs/}
 * row.
 */
class RowCodecSeedTest {
  private static final RowProvenance PROV = new RowProvenance("[]", "ph", "ch", "run", "run-0");
  private static final EngineInfo ENGINE = new EngineInfo("sha", "engine");

  @Test
  void okRowsCarryTheRecordSeedAndBranchMapsErrorRowsNoSeed() {
    RecordResult r =
        new RecordResult(
            "ans",
            new int[] {1},
            List.of(),
            List.of(
                new KeptTokens(
                    "damro",
                    "BRANCH",
                    -1,
                    256,
                    new int[] {17, 3, 200, 9},
                    new int[] {17, 3, 200, 9})),
            new Flops(1, 2, 3),
            Map.of(),
            null,
            null,
            -8_000_000_000L,
            List.of());
    Timestamp now = new Timestamp(0);
    Row ok =
        RowCodec.okRow(
            new RowCodec.InputRecordRef("a", null, "q", null), r, Map.of(), ENGINE, PROV, now);
    assertThat(ok.size()).isEqualTo(OutputSchemas.OUTPUTS.size());
    assertThat(ok.getLong(OutputSchemas.OUTPUTS.fieldIndex("record_seed")))
        .isEqualTo(-8_000_000_000L);
    Row map = ok.<Row>getList(OutputSchemas.OUTPUTS.fieldIndex("kept_maps")).get(0);
    assertThat(map.getString(1)).isEqualTo("BRANCH");
    assertThat((int[]) map.get(5)).containsExactly(17, 3, 200, 9);
    Row err =
        RowCodec.errorRow(
            new RowCodec.InputRecordRef("b", null, "q", null),
            new IllegalStateException("x"),
            1.0,
            ENGINE,
            PROV,
            now);
    assertThat(err.size()).isEqualTo(OutputSchemas.OUTPUTS.size());
    assertThat(err.isNullAt(OutputSchemas.OUTPUTS.fieldIndex("record_seed"))).isTrue();
  }
}
