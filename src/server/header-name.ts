/**
 * An HTTP header name: a token of RFC 9110. The config checks header names against it, and the
 * CORS preflight allows only a list of such names as a browser asks for them.
 */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";

/** One header name. */
export const HEADER_NAME = new RegExp(`^${TOKEN}$`);

/** A comma-separated list of up to 64 header names, as Access-Control-Request-Headers holds them. */
export const HEADER_NAME_LIST = new RegExp(`^${TOKEN}(?:\\s*,\\s*${TOKEN}){0,63}$`);
