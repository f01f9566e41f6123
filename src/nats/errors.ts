import { ErrorCode, type NatsError } from 'nats';

/**
 * NATS errors are told apart by their codes, never by their messages (which change between
 * client and server versions): the client's `ErrorCode`s, and JetStream API errors' `err_code`
 * (nats-server's server/errors.json; the same on 2.9 and 2.10+).
 */
export const JsErrCode = {
  /** "no suitable peers for placement": fewer nodes the meta leader can place replicas on than asked. */
  ClusterNoPeers: 10005,
  ConsumerNotFound: 10014,
  NoMessageFound: 10037,
  /** JetStream not enabled for the account. */
  NotEnabledForAccount: 10039,
  StreamNotFound: 10059,
  /** JetStream not enabled on the server. */
  NotEnabled: 10076,
} as const;

/** The JetStream API error code of `err`, if it is one. */
export const jsErrCode = (err: unknown): number | undefined => (err as NatsError | null)?.api_error?.err_code;

export const isJsError = (err: unknown, code: (typeof JsErrCode)[keyof typeof JsErrCode]): boolean => jsErrCode(err) === code;

/** The server refused a publish, a subscription or a request for this connection's identity. */
export const isPermissionsViolation = (err: unknown): boolean => (err as NatsError | null)?.code === ErrorCode.PermissionsViolation;

/**
 * nats.js gives a connect attempt that timed out and a request nobody answered in time the same
 * code (TIMEOUT). They need different fixes (start a server, or wait out a leader election), so
 * openNats marks a failure to connect with this.
 */
export const CouldNotConnect = Symbol('orderflow.couldNotConnect');
export const couldNotConnect = (err: unknown): boolean => Boolean((err as { [CouldNotConnect]?: boolean } | null)?.[CouldNotConnect]);
