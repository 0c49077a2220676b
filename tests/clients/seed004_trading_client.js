// Seed 004's JavaScript client, run in Node against roomcast by
// tests/seed004.rs (`a_seed004_javascript_client_logs_all_four_streams_and_reconnects`).
//
//   node [--experimental-websocket] tests/clients/seed004_trading_client.js ws://127.0.0.1:8000/ws
//
// The class below is the seed's `TradingWebSocketClient`, verbatim
// (../shared/seeds/004_bc909f50d03dd4b8.txt L157-247); only its usage (L249-251)
// takes the URL from the command line. Node >= 22 has a global WebSocket;
// Node 20 and 21 need --experimental-websocket.
//
// What the client logs is what the test reads: every line on standard output,
// in order (console.error, which the client uses for errors, is sent there too).
'use strict';

console.error = (...args) => console.log(...args);

class TradingWebSocketClient {
    constructor(url) {
        this.url = url;
        this.ws = null;
        this.reconnectDelay = 5000;
        this.isConnected = false;
    }

    connect() {
        this.ws = new WebSocket(this.url);
        
        this.ws.onopen = () => {
            console.log('WebSocket connected');
            this.isConnected = true;
            this.startPingInterval();
        };
        
        this.ws.onmessage = (event) => {
            const data = JSON.parse(event.data);
            this.handleMessage(data);
        };
        
        this.ws.onclose = () => {
            console.log('WebSocket disconnected');
            this.isConnected = false;
            // Reconnect after delay
            setTimeout(() => this.connect(), this.reconnectDelay);
        };
        
        this.ws.onerror = (error) => {
            console.error('WebSocket error:', error);
        };
    }

    handleMessage(data) {
        switch (data.type) {
            case 'price_update':
                this.onPriceUpdate(data.symbols);
                break;
            case 'signal':
                this.onSignal(data);
                break;
            case 'trade_executed':
                this.onTradeExecuted(data);
                break;
            case 'portfolio_update':
                this.onPortfolioUpdate(data.data);
                break;
            case 'pong':
                console.log('Pong received');
                break;
            case 'error':
                console.error('Server error:', data.error);
                break;
        }
    }

    onPriceUpdate(symbols) {
        for (const [symbol, data] of Object.entries(symbols)) {
            console.log(`${symbol}: $${data.price} (${data.change_pct > 0 ? '+' : ''}${data.change_pct}%)`);
        }
    }

    onSignal(signal) {
        console.log(`Signal: ${signal.signal_type} ${signal.symbol} @ $${signal.price} (confidence: ${signal.confidence})`);
    }

    onTradeExecuted(trade) {
        console.log(`Trade: ${trade.side} ${trade.quantity} ${trade.symbol} @ $${trade.price}`);
    }

    onPortfolioUpdate(data) {
        console.log(`Portfolio: ${data.position_count} positions, P&L: $${data.total_pnl}`);
    }

    ping() {
        if (this.isConnected) {
            this.ws.send(JSON.stringify({ type: 'ping' }));
        }
    }

    startPingInterval() {
        setInterval(() => this.ping(), 30000); // Ping every 30 seconds
    }

    disconnect() {
        if (this.ws) {
            this.ws.close();
        }
    }
}

// Usage
const client = new TradingWebSocketClient(process.argv[2]);
client.connect();
