package dev.tokenpress.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class TaskSlotsTest {
  @Test
  void localMastersGiveTheirThreadCount() {
    assertEquals(1, TaskSlots.perExecutor("local", null, 1, 16));
    assertEquals(2, TaskSlots.perExecutor("local[2]", null, 1, 16));
    assertEquals(16, TaskSlots.perExecutor("local[*]", null, 1, 16));
    assertEquals(3, TaskSlots.perExecutor("local[3,4]", null, 1, 16), "local[N,maxFailures]");
    assertEquals(
        4, TaskSlots.perExecutor("local-cluster[2, 4, 1024]", null, 1, 16), "cores per worker");
    assertEquals(
        2,
        TaskSlots.perExecutor("local[4]", "8", 2, 16),
        "task.cpus divides; executor.cores ignored locally");
  }

  @Test
  void clusterMastersUseExecutorCoresOrTheManagersDefault() {
    assertEquals(8, TaskSlots.perExecutor("spark://host:7077", "8", 1, 16));
    assertEquals(2, TaskSlots.perExecutor("yarn", "8", 4, 16));
    assertEquals(
        1, TaskSlots.perExecutor("yarn", null, 1, 16), "YARN's default executor cores is 1");
    assertEquals(1, TaskSlots.perExecutor("k8s://https://api:6443", null, 1, 16));
    assertEquals(
        16,
        TaskSlots.perExecutor("spark://host:7077", null, 1, 16),
        "standalone: all the worker's cores");
    assertEquals(16, TaskSlots.perExecutor(null, null, 1, 16));
  }

  @Test
  void neverBelowOneSlot() {
    assertEquals(1, TaskSlots.perExecutor("local[2]", null, 4, 16));
    assertEquals(1, TaskSlots.perExecutor("yarn", "1", 2, 16));
  }
}
