package dev.tokenpress.jobs.compress;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@code ExactlyOnceCheck OUTPUT_DIR EXPECTED_IDS KV_ROWS_PER_OK_ID}: checks a compress output with
 * DuckDB — each id exactly once in {@code outputs/}, each (id, layer, chunk) exactly once in {@code
 * kv_cache/}, KV in the batch of its id's output row, every ok id with {@code KV_ROWS_PER_OK_ID}
 * rows (0: not checked), and every {@code *.parquet} below the output readable. Prints the figures;
 * exits 1 on a violation. Used by {@code tools/standalone-faults.sh}.
 */
public final class ExactlyOnceCheck {
  private ExactlyOnceCheck() {}

  public static void main(String[] args) {
    Path out = Path.of(args[0]).toAbsolutePath();
    long expected = Long.parseLong(args[1]);
    long perId = Long.parseLong(args[2]);
    try (DuckDb db = new DuckDb()) {
      long rows = db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out));
      long ids = db.scalarLong("SELECT count(DISTINCT id) FROM " + DuckDb.outputs(out));
      long ok =
          db.scalarLong("SELECT count(*) FROM " + DuckDb.outputs(out) + " WHERE status = 'ok'");
      long kv = db.scalarLong("SELECT count(*) FROM " + DuckDb.kv(out));
      long kvKeys =
          db.scalarLong("SELECT count(DISTINCT (id, layer, chunk)) FROM " + DuckDb.kv(out));
      long wrongBatch =
          db.scalarLong(
              "SELECT count(*) FROM "
                  + DuckDb.kv(out)
                  + " k JOIN "
                  + DuckDb.outputs(out)
                  + " o ON k.id = o.id WHERE k.batch_id <> o.batch_id");
      List<Map<String, Object>> perOk =
          db.query(
              "SELECT o.id, count(k.id) AS n FROM "
                  + DuckDb.outputs(out)
                  + " o LEFT JOIN "
                  + DuckDb.kv(out)
                  + " k ON k.id = o.id WHERE o.status = 'ok' GROUP BY o.id HAVING n <> "
                  + perId);
      long all =
          db.scalarLong(
              "SELECT count(*) FROM read_parquet('"
                  + out
                  + "/**/*.parquet', union_by_name = true)");
      System.out.printf(
          "outputs rows %d, distinct ids %d (expected %d), ok %d; kv rows %d, distinct (id,layer,chunk) %d;"
              + " kv rows in another batch than their output %d; ok ids without %d kv rows %d; rows under **/*.parquet %d%n",
          rows,
          ids,
          expected,
          ok,
          kv,
          kvKeys,
          wrongBatch,
          perId,
          perId == 0 ? 0 : perOk.size(),
          all);
      boolean good =
          rows == expected
              && ids == expected
              && kv == kvKeys
              && wrongBatch == 0
              && (perId == 0 || perOk.isEmpty())
              && all == rows + kv;
      System.out.println(good ? "EXACTLY ONCE: yes" : "EXACTLY ONCE: NO");
      System.exit(good ? 0 : 1);
    }
  }
}
