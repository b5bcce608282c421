import { shallowRef } from "vue";
import { ApiProblem } from "../api/problem";

/** A page's actions: each clears the page's problem, does its work, then reloads what the
 * page shows (`reload`, when given); a failure becomes the problem the page shows. */
export function useAttempt(reload?: () => Promise<unknown>) {
  const problem = shallowRef<ApiProblem | null>(null);

  async function attempt(work: () => Promise<unknown>): Promise<void> {
    problem.value = null;
    try {
      await work();
      if (reload) await reload();
    } catch (error) {
      problem.value = ApiProblem.from(error);
    }
  }

  /** What `load` finds, or null when it answers 404 (not set up yet: the page offers to
   * set it up); another failure becomes the problem. */
  async function ifAny<T>(load: () => Promise<T>): Promise<T | null> {
    try {
      return await load();
    } catch (error) {
      const found = ApiProblem.from(error);
      if (found.status !== 404) problem.value = found;
      return null;
    }
  }

  return { problem, attempt, ifAny };
}
