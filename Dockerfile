# The fluxolab binary in a slim image. Build: docker build -t fluxolab .
# The web console first (console/dist), which the binary embeds.
FROM node:20-bookworm-slim AS console
WORKDIR /src/console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/ ./
RUN npm run build

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=console /src/console/dist console/dist
RUN cargo build --release --locked --package fluxolab-app --bin fluxolab

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 fluxolab
COPY --from=build /src/target/release/fluxolab /usr/local/bin/fluxolab
USER fluxolab
ENV BIND_ADDR=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080
CMD ["fluxolab", "serve"]
