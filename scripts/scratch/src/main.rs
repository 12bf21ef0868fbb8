//! Serves the scratch app on 127.0.0.1:8009.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_manager, app) = scratch_app::app(portcullis::Outbox::new())?;
    poem::Server::new(poem::listener::TcpListener::bind("127.0.0.1:8009"))
        .run(app)
        .await?;
    Ok(())
}
