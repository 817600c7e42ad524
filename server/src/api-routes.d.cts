export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";
export type ApiRoute = { template: string; methods: Method[] };
export declare const HTTP_METHODS: readonly Method[];
export declare function readApiRoutes(serverDir: string): ApiRoute[];
export declare function exportedMethods(src: string): Method[];
