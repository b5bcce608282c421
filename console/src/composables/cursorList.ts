import { ref, shallowRef, type Ref } from "vue";
import { ApiProblem } from "../api/problem";

/** One page of a cursor-paginated list, as every list route answers. */
export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

/** A list read page by page: `load` starts over, `more` appends the next page. */
export function useCursorList<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>) {
  const items = shallowRef<T[]>([]) as Ref<T[]>;
  const nextCursor = ref<string | null>(null);
  const loading = ref(false);
  const loaded = ref(false);
  const problem = shallowRef<ApiProblem | null>(null);

  async function fetchInto(cursor: string | undefined, append: boolean) {
    loading.value = true;
    problem.value = null;
    try {
      const page = await fetchPage(cursor);
      items.value = append ? [...items.value, ...page.items] : page.items;
      nextCursor.value = page.next_cursor ?? null;
      loaded.value = true;
    } catch (error) {
      problem.value = ApiProblem.from(error);
    } finally {
      loading.value = false;
    }
  }

  return {
    items,
    nextCursor,
    loading,
    loaded,
    problem,
    load: () => fetchInto(undefined, false),
    more: () => (nextCursor.value ? fetchInto(nextCursor.value, true) : Promise.resolve()),
  };
}
