/**
 * The Sluice gateway: a reverse proxy that authenticates consumers and enforces the HTTP layer's
 * rate-limit policies per route. Started by `sluice serve --config sluice.yaml`, or in code:
 *
 * ```ts
 * import { startGateway } from 'sluice/gateway';
 * const gw = await startGateway({ configFile: 'sluice.yaml', watch: true, signals: true });
 * console.log(gw.url, gw.adminUrl);
 * ```
 */
export { startGateway, type Gateway, type GatewayLogger, type GatewayOptions } from './server.js';
export { loadConfig, validateConfig, configJsonSchema, type GatewayConfig } from './config.js';
export { hashKey, type Consumer, type ApiKeyRecord, type Override } from './consumers.js';
