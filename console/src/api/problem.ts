/** An RFC 9457 problem as the API answers it (`application/problem+json`). */
export interface FieldError {
  field: string;
  message: string;
}

/** The error every API call rejects with: the server's problem, or one made up for a
 * failure that never reached it. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: FieldError[];
  readonly requestId: string | undefined;

  constructor(fields: {
    status: number;
    code: string;
    title: string;
    detail?: string;
    errors?: FieldError[];
    requestId?: string;
  }) {
    super(fields.detail ?? fields.title);
    this.name = "ApiProblem";
    this.status = fields.status;
    this.code = fields.code;
    this.title = fields.title;
    this.detail = fields.detail;
    this.errors = fields.errors ?? [];
    this.requestId = fields.requestId;
  }

  /** The message of `field`'s error, if the problem names it. */
  fieldError(field: string): string | undefined {
    return this.errors.find((error) => error.field === field)?.message;
  }

  /** The messages of the fields under `prefix` (`config.` names `config.address`), by
   * the rest of their name: the server's errors for one nested form. */
  fieldErrorsUnder(prefix: string): Record<string, string> {
    const found: Record<string, string> = {};
    for (const error of this.errors) {
      if (error.field.startsWith(prefix)) found[error.field.slice(prefix.length)] ??= error.message;
    }
    return found;
  }

  /** A problem from whatever an API call failed with: a problem body, another body, or
   * a thrown error (network down). */
  static from(error: unknown, response?: Response): ApiProblem {
    if (error instanceof ApiProblem) return error;
    const status = response?.status ?? 0;
    if (isProblemBody(error)) {
      return new ApiProblem({
        status: typeof error.status === "number" ? error.status : status,
        code: error.code,
        title: error.title,
        detail: typeof error.detail === "string" ? error.detail : undefined,
        errors: Array.isArray(error.errors) ? error.errors.filter(isFieldError) : [],
        requestId: typeof error.request_id === "string" ? error.request_id : undefined,
      });
    }
    if (response) {
      return new ApiProblem({
        status,
        code: "unexpected_response",
        title: response.statusText || `HTTP ${status}`,
        detail: `The server answered ${status} without a problem document.`,
      });
    }
    return new ApiProblem({
      status: 0,
      code: "network",
      title: "The server could not be reached",
      detail: error instanceof Error ? error.message : String(error),
    });
  }
}

interface ProblemBody {
  code: string;
  title: string;
  status?: unknown;
  detail?: unknown;
  errors?: unknown;
  request_id?: unknown;
}

function isProblemBody(value: unknown): value is ProblemBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ProblemBody).code === "string" &&
    typeof (value as ProblemBody).title === "string"
  );
}

function isFieldError(value: unknown): value is FieldError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as FieldError).field === "string" &&
    typeof (value as FieldError).message === "string"
  );
}
