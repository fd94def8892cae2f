// A local Vendure server for the gateway's tests and demo (docs/shops/vendure.md).
//   node index.js --db FILE --port N [--seed-only]
// A missing --db file is created and seeded (catalog: products.csv) first.
// Settings come from the environment: VENDURE_ADMIN_USER, VENDURE_ADMIN_PASSWORD,
// VENDURE_CHANNEL_TOKEN. Listens on 127.0.0.1 only.
'use strict';
const fs = require('fs');
const path = require('path');
const {
    bootstrap, dummyPaymentHandler, DefaultLogger, LogLevel, LanguageCode, mergeConfig,
} = require('@vendure/core');
const { populate } = require('@vendure/core/cli');

function arg(name, fallback) {
    const at = process.argv.indexOf(name);
    return at >= 0 ? process.argv[at + 1] : fallback;
}

const db = path.resolve(arg('--db', 'vendure.sqlite'));
const port = Number(arg('--port', '3000'));
const seedOnly = process.argv.includes('--seed-only');
const channelToken = process.env.VENDURE_CHANNEL_TOKEN || 'household';

const config = {
    apiOptions: {
        hostname: '127.0.0.1',
        port,
        adminApiPath: 'admin-api',
        shopApiPath: 'shop-api',
        adminApiPlayground: false,
        shopApiPlayground: false,
    },
    authOptions: {
        tokenMethod: ['bearer'],
        superadminCredentials: {
            identifier: process.env.VENDURE_ADMIN_USER || 'superadmin',
            password: process.env.VENDURE_ADMIN_PASSWORD || 'superadmin',
        },
        cookieOptions: { secret: 'local-test-bed-only' },
    },
    dbConnectionOptions: { type: 'better-sqlite3', synchronize: true, database: db, logging: false },
    paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
    customFields: {
        // The gateway's idempotency key: one order per key, found again by it.
        Order: [{ name: 'gatewayKey', type: 'string', unique: true, nullable: true, public: false }],
    },
    importExportOptions: { importAssetsDir: __dirname },
    logger: new DefaultLogger({ level: LogLevel.Warn }),
    plugins: [],
};

const initialData = {
    defaultLanguage: LanguageCode.en,
    defaultZone: 'Europe',
    taxRates: [{ name: 'Standard Tax', percentage: 0 }],
    shippingMethods: [{ name: 'Standard Shipping', price: 0 }],
    paymentMethods: [
        { name: 'Invoice', handler: { code: dummyPaymentHandler.code, arguments: [{ name: 'automaticSettle', value: 'true' }] } },
    ],
    collections: [],
    countries: [{ name: 'Germany', code: 'DE', zone: 'Europe' }],
};

async function seed() {
    const app = await populate(() => bootstrap(mergeConfig(config, { apiOptions: { port: 0 } })),
        initialData, path.join(__dirname, 'products.csv'));
    // The channel token the gateway sends (vendure-token header).
    const { ChannelService, RequestContextService } = require('@vendure/core');
    const ctx = await app.get(RequestContextService).create({ apiType: 'admin' });
    const channels = app.get(ChannelService);
    const channel = await channels.getDefaultChannel(ctx);
    await channels.update(ctx, { id: channel.id, token: channelToken, currencyCode: 'EUR', defaultCurrencyCode: 'EUR' });
    await app.close();
}

async function main() {
    if (!fs.existsSync(db)) {
        await seed();
    }
    if (seedOnly) {
        process.exit(0);
    }
    const app = await bootstrap(config);
    process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
    console.log(`vendure ready on http://127.0.0.1:${port}`);
}

main().catch((err) => {
    console.error(`vendure test bed failed: ${err && err.message}`);
    process.exit(1);
});
