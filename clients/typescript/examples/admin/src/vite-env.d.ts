/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The service's base URL, such as http://localhost:8080 (not used with --mode mock). */
  readonly VITE_USERAPI_URL?: string;
}
