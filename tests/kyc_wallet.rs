//! The wallet's and merchant's way into KYC over real HTTP: the exchange's `/config`, the 501s
//! of the endpoints talerbox leaves out, `POST /kyc-wallet` and `GET /kyc-check`.

use serde_json::Value;

use crate::support::{TestServer, assert_error};

#[tokio::test]
async fn exchange_config_names_its_currency_and_kyc_requirements() {
    let server = TestServer::start().await;
    let exchange: Value = server.get("exchange/config").await.json().await.unwrap();
    assert_eq!(exchange["currency"], "KUDOS");
    assert_eq!(exchange["currency_specification"]["currency"], "KUDOS");
    assert_eq!(
        exchange["currency_specification"]["name"],
        "Kudos (Taler Demonstrator)"
    );
    assert_eq!(
        exchange["supported_kyc_requirements"],
        serde_json::json!([])
    );
    // The bank's specification stays as libeufin-bank sends it: without `currency`.
    let bank: Value = server.get("bank/config").await.json().await.unwrap();
    assert!(bank["currency_specification"].get("currency").is_none());
    assert!(bank.get("supported_kyc_requirements").is_none());
    server.stop().await;
}

#[tokio::test]
async fn endpoints_left_out_answer_501_and_unknown_ones_404() {
    let server = TestServer::start().await;
    let key = "000G40R40M30E209185GR38E1W8124GK2GAHC5RR34D1P70X3RFG";
    let get = |path: String| server.client.get(server.url(&format!("exchange/{path}")));
    let post = |path: String| server.client.post(server.url(&format!("exchange/{path}")));
    let requests = [
        get("keys".into()),
        get("seed".into()),
        get("terms".into()),
        get("privacy".into()),
        get(format!("reserves/{key}")),
        get(format!("reserves/{key}/history")),
        post(format!("reserves/{key}/batch-withdraw")),
        post("batch-deposit".into()),
        post(format!("coins/{key}/melt")),
        post(format!("refreshes/{key}/reveal")),
        post(format!("coins/{key}/recoup")),
        post(format!("purses/{key}/create")),
        server
            .client
            .delete(server.url(&format!("exchange/purses/{key}"))),
        get(format!("contracts/{key}")),
        get(format!("transfers/{key}")),
        get(format!("wads/{key}")),
        get(format!("deposits/{key}/{key}/{key}/{key}")),
        get("kyc-webhook/challenger/anything".into()),
        post("kyc-webhook/challenger".into()),
        get("management/keys".into()),
        post("management/wire".into()),
        post(format!("management/signkeys/{key}/revoke")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        let body = assert_error(response, 501, 21).await;
        assert_eq!(body["hint"], "not implemented by talerbox", "{url}");
    }
    // A wrong method on a left-out endpoint is still 405, an unknown path still 404.
    let response = get("batch-deposit".into()).send().await.unwrap();
    assert_error(response, 405, 20).await;
    for path in ["exchange/keys/extra", "exchange/reserves", "exchange/nope"] {
        assert_error(server.get(path).await, 404, 21).await;
    }
    server.stop().await;
}
