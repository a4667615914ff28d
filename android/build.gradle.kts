// Android library module: the generated UniFFI bindings (../bindings/kotlin), the thin
// Kotlin facade (src/main/kotlin) and the Rust library for four ABIs in src/main/jniLibs,
// built by ../scripts/build-android (needs the Android NDK and cargo-ndk), and btleplug's
// droidplug Java classes (the core's Bluetooth stack on Android reaches them through JNI),
// copied from the btleplug that Cargo.lock pins by the task droidplugSources below.
import groovy.json.JsonSlurper

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

// btleplug's Java half is not on Maven: its sources ship in the crate. Copy them from the
// exact version in Cargo.lock (cargo metadata names its directory) into build/, never into git.
val droidplugDir = layout.buildDirectory.dir("generated/droidplug/java")
val droidplugSources by tasks.registering(Sync::class) {
    val javaDir = providers.exec {
        workingDir = projectDir.parentFile // the door-core workspace
        commandLine("cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", "aarch64-linux-android")
    }.standardOutput.asText.map { json ->
        @Suppress("UNCHECKED_CAST")
        val packages = (JsonSlurper().parseText(json) as Map<String, Any>)["packages"] as List<Map<String, Any>>
        val btleplug = packages.single { it["name"] == "btleplug" }
        File(btleplug["manifest_path"] as String).parentFile.resolve("src/droidplug/java/src/main/java")
    }
    from(javaDir)
    into(droidplugDir)
}

android {
    namespace = "dev.doorcore"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].java.srcDirs("src/main/kotlin", "../bindings/kotlin", droidplugDir.get().asFile)
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

tasks.named("preBuild") { dependsOn(droidplugSources) }

dependencies {
    // JNA as an AAR: it carries libjnidispatch.so for every Android ABI.
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
}
